import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

t.test('README', async (t) => {
  t.test('opens with the two commands', async (t) => {
    const first = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
    t.match(first, /^npm install && npm start/m)
    t.match(first, /^npm test/m)
  })

  t.test('the programmatic API example runs as written', async (t) => {
    const block = /## Programmatic API\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    t.ok(block, 'the example is there')
    const dir = t.testdir()
    const code = block!
      .replace("from 'circles'", `from '${join(ROOT, 'dist/src/index.js')}'`)
      .replace("dbPath: './data'", `dbPath: ${JSON.stringify(join(dir, 'data'))}`)
    const file = join(dir, 'example.mjs')
    writeFileSync(file, code)
    const child = spawn(process.execPath, [file], { cwd: dir })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const status = await new Promise((resolve) => child.on('exit', resolve))
    t.equal(status, 0, out)
    t.equal(out.trim(), 'world')
  })
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode } from './helpers/node.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

t.test('README', async (t) => {
  t.test('opens with the two commands', async (t) => {
    const first = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
    t.match(first, /^npm install && npm start/m)
    t.match(first, /^npm test/m)
  })

  t.test('the copy-paste walkthrough snippet authenticates and runs a script', async (t) => {
    const block = /The heart of it, copy-paste ready:\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1]
    t.ok(block, 'the snippet is there')
    const { node, circle, url } = await startNode(t)
    await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'save_data("profile", { name: "Test" })' })
    const file = join(t.testdir(), 'snippet.mjs')
    // Resolve the snippet's imports from this repository's node_modules.
    const code = block!
      .replace("from 'ws'", `from '${join(ROOT, 'node_modules/ws/wrapper.mjs')}'`)
      .replaceAll("'@noble/", `'${join(ROOT, 'node_modules/@noble/')}`)
      .replace('ws://127.0.0.1:8090/', url)
    writeFileSync(file, code)
    const child = spawn(process.execPath, [file])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    t.equal(await new Promise((resolve) => child.on('exit', resolve)), 0, out)
    t.same(JSON.parse(out), { name: 'Test' })
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

import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ROOT } from '../helpers/cli-process.js'

// A browser-only TypeScript project — the DOM library, no @types/node, skipLibCheck off — type-
// checks against the package's browser types: nothing they reach may need Node's (`NodeJS`,
// `Buffer`). The package is copied (no node_modules beside it, so nothing of Node's can leak in)
// as npm would install it: package.json, the declarations and the browser build.

const PACKAGE = '@circles-runtime/circles'

const CONSUMER = `
import { CirclesClient, CirclesClientError, eip1193Signer, generateKeyPair, type Eip1193Provider, type PlayResult } from '${PACKAGE}/ENTRY'

const { secretKey } = generateKeyPair()
const client = CirclesClient.builder(\`ws://\${location.host}/\`).withKey(secretKey).withTimeout(5_000).build()
await client.connect()
await client.authenticate()
try {
  const played: PlayResult = await client.play('1 + 1', { signal: AbortSignal.timeout(1_000) })
  document.body.textContent = played.output
} catch (error) {
  if (error instanceof CirclesClientError) document.title = error.code
}
const wallet = (window as unknown as { ethereum?: Eip1193Provider }).ethereum
if (wallet !== undefined) CirclesClient.builder('wss://example.org/').withKey(await eip1193Signer(wallet)).build()
`

function declarationsAndBrowserBuild(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name)
    if (entry.isDirectory()) declarationsAndBrowserBuild(source, join(to, entry.name))
    else if (entry.name.endsWith('.d.ts') || relative(ROOT, source).startsWith('dist/browser/')) {
      mkdirSync(to, { recursive: true })
      cpSync(source, join(to, entry.name))
    }
  }
}

function tsc(project: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('close', (code) => resolve({ code, out }))
  })
}

t.test("a browser-only project type-checks against the client's browser types", { timeout: 60_000 }, async (t) => {
  if (!existsSync(join(ROOT, 'dist/browser/circles-client.d.ts'))) return t.fail('run npm run build first (npm test does)')
  const dir = t.testdir()
  const installed = join(dir, 'node_modules', PACKAGE)
  mkdirSync(installed, { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'))
  declarationsAndBrowserBuild(join(ROOT, 'dist'), join(installed, 'dist'))
  const base = { target: 'ES2022', lib: ['ES2022', 'DOM'], module: 'ESNext', moduleResolution: 'bundler', types: [], strict: true, noEmit: true, skipLibCheck: false }
  const projects = [
    // The subpath for browsers, under a bundler's resolution as such projects set it up.
    { name: 'browser-entry', entry: 'browser', options: base },
    // ./client with the browser condition (a bundler that honours it, and TypeScript told so).
    { name: 'client-browser-condition', entry: 'client', options: { ...base, customConditions: ['browser'] } },
  ]
  for (const { name, entry, options } of projects) {
    writeFileSync(join(dir, `${name}.ts`), CONSUMER.replace('ENTRY', entry))
    writeFileSync(join(dir, `${name}.json`), JSON.stringify({ compilerOptions: options, files: [`${name}.ts`] }))
    const { code, out } = await tsc(join(dir, `${name}.json`))
    t.equal(out, '', `${name}: no type errors`)
    t.equal(code, 0, name)
  }
})

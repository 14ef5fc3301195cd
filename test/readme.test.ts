import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode } from './helpers/node.js'
import { launch } from '../src/launcher/index.js'
import { parseRedisTarget } from '../src/queue/index.js'
import { testPrefix, testRedis } from './helpers/redis-server.js'
import { silentLogger } from '../src/log/index.js'
import type { SupervisorTree } from '../src/supervisor/index.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const doc = (name: string) => readFileSync(join(ROOT, 'docs', name), 'utf8')

/** Column where a tree line's restart type starts, and where its description starts after it. */
const NAME_WIDTH = 22
const RESTART_WIDTH = 12

/** A supervisor's strategy and intensity as the README draws them. */
function describe(tree: SupervisorTree): string {
  if (tree.children.length === 0 && tree.dynamic !== undefined) return `${tree.strategy}, dynamic children only`
  return `${tree.strategy}, ${tree.intensity} restarts / ${tree.periodMs / 1000} s`
}

/** The supervision tree drawn as in docs/operations.md's "Supervision tree" block (comments aside). */
function draw(tree: SupervisorTree): string[] {
  const lines = [`${tree.id.padEnd(NAME_WIDTH)}${describe(tree)}`]
  const walk = (node: SupervisorTree, prefix: string) => {
    const rows: { name: string; restart: string; sub: SupervisorTree | undefined }[] = node.children.map((c) => ({
      name: c.id,
      restart: c.restart,
      sub: c.type === 'supervisor' ? c : undefined,
    }))
    if (node.dynamic !== undefined) rows.push({ name: node.id === 'peers' ? '<pubkey> …' : 'conn-<n> …', restart: node.dynamic.restart, sub: undefined })
    rows.forEach((row, i) => {
      const last = i === rows.length - 1
      const head = `${prefix}${last ? '└── ' : '├── '}${row.name}`
      lines.push(`${head.padEnd(NAME_WIDTH)}${row.restart.padEnd(RESTART_WIDTH)}${row.sub === undefined ? 'worker' : describe(row.sub)}`)
      if (row.sub !== undefined) walk(row.sub, `${prefix}${last ? '    ' : '│   '}`)
    })
  }
  walk(tree, '')
  return lines
}

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
    // The test directory is inside this repository: its imports resolve as a user's would.
    writeFileSync(file, block!.replace('ws://127.0.0.1:8090/', url))
    const child = spawn(process.execPath, [file])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    t.equal(await new Promise((resolve) => child.on('exit', resolve)), 0, out)
    t.same(JSON.parse(out), { name: 'Test' })
  })

  t.test("the client library's first script runs as written", async (t) => {
    const block = /## A first script from the client library\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1]
    t.ok(block, 'the example is there')
    const { node, circle, url } = await startNode(t)
    await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'save_data("profile", { name: "Alice" })' })
    const file = join(t.testdir(), 'first.mjs')
    // Inside this repository the package's name resolves to the package itself (self-reference).
    writeFileSync(file, block!.replace('ws://127.0.0.1:8090/', url))
    const child = spawn(process.execPath, ['--no-node-snapshot', file])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    t.equal(await new Promise((resolve) => child.on('exit', resolve)), 0, out)
    t.equal(out.trim(), 'Alice')
  })

  t.test('the programmatic API example runs as written', async (t) => {
    const block = /## Programmatic API\n\n```ts\n([\s\S]*?)```/.exec(doc('client.md'))?.[1]
    t.ok(block, 'the example is there')
    const dir = t.testdir()
    const code = block!.replace("dbPath: './data'", `dbPath: ${JSON.stringify(join(dir, 'data'))}`)
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

  t.test('the supervision tree drawn in docs/operations.md is the one a node runs', async (t) => {
    const block = /## Supervision tree\n[\s\S]*?```text\n([\s\S]*?)```/.exec(doc('operations.md'))?.[1]
    t.ok(block, 'the drawing is there')
    const drawn = block!.trimEnd().split('\n').map((line) => line.replace(/\s+#.*$/, '').trimEnd())
    // The demo circles (ports of their own: the launcher test uses the demo's), two hosts, joined
    // through Redis. A directory of its own, removed once the node has closed (a t.testdir()
    // would go first).
    const dir = mkdtempSync(join(tmpdir(), 'circles-readme-tree-'))
    writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ name: 'alice', port: 0 }, { name: 'board', port: 0 }]))
    const prefix = testPrefix('readme-tree')
    const { url } = await testRedis(t, prefix)
    const redis = { target: parseRedisTarget([url]), secret: 'readme-tree-test-secret-0123456789', prefix }
    const { node } = await launch({ configPath: join(dir, 'circles.json'), dbPath: join(dir, 'db'), node: { sandbox: { processes: 2 }, logger: silentLogger(), admin: { port: 0 }, redis } })
    t.teardown(async () => {
      await node.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const tree = node.tree()
    t.same(drawn, draw(tree))
    // docs/architecture.md draws the root's children one line each (a port as gateway:<name>):
    // every child the node runs, in start order, redis included.
    const architecture = /^# Architecture\n\n```\n([\s\S]*?)```/.exec(doc('architecture.md'))?.[1]
    t.ok(architecture, 'the architecture drawing is there')
    const names = architecture!.split('\n').flatMap((line) => /^[├└]── (\S+)/.exec(line)?.[1] ?? [])
    const running = [...new Set(tree.children.map((c) => c.id.replace(/^gateway:.*/, 'gateway:<name>')))]
    t.same(names, running, 'docs/architecture.md names every child of the root, in order')
    t.ok(names.includes('redis'), 'redis included')
  })
})

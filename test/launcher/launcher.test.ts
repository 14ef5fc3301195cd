import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch, keyPathFor, parseCirclesConfig } from '../../src/launcher/index.js'
import { CirclesClient } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { silentLogger } from '../../src/log/index.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test('parseCirclesConfig(value)', async (t) => {
  t.test('accepts the repository demo file', async (t) => {
    const circles = parseCirclesConfig(JSON.parse(readFileSync(join(ROOT, 'circles.json'), 'utf8')), ROOT)
    t.ok(circles.length >= 2)
    t.same(circles[0]!.policy, { run: 'authenticated', write: 'owner', call: 'owner', subscribe: 'authenticated' }, 'the first circle keeps the default policy')
  })

  const cases: [unknown, RegExp][] = [
    [{}, /^circles must be an array/],
    [[], /at least one circle/],
    [[1], /circles\[0\] must be an object/],
    [[{ port: 1 }], /circles\[0\]\.name/],
    [[{ name: 'a b', port: 1 }], /circles\[0\]\.name/],
    [[{ name: 'a', port: 1 }, { name: 'a', port: 2 }], /circles\[1\]\.name "a" is used twice/],
    [[{ name: 'a', port: 70000 }], /circles\[0\]\.port/],
    [[{ name: 'a', port: '80' }], /circles\[0\]\.port/],
    [[{ name: 'a', port: 1 }, { name: 'b', port: 1 }], /circles\[1\]\.port 1 is used twice/],
    [[{ name: 'a', port: 1, colour: 'red' }], /circles\[0\]\.colour is not a circle setting/],
    [[{ name: 'a', port: 1, script_path: 5 }], /circles\[0\]\.script_path/],
    [[{ name: 'a', port: 1, policy: { run: 'everyone' } }], /circles\[0\]\.policy\.run/],
    [[{ name: 'a', port: 1, limits: { timeout_ms: 0 } }], /circles\[0\]\.limits\.timeout_ms must be a positive integer/],
    [[{ name: 'a', port: 1, limits: { speed: 1 } }], /circles\[0\]\.limits\.speed is not a limit/],
    [[{ name: 'a', port: 1, limits: { memory_mb: 4 } }], /memory_mb must be at least 8/],
    [[{ name: 'a', port: 1, domains: 'circle.example' }], /circles\[0\]\.domains must be an array of strings/],
    [[{ name: 'a', port: 1, domains: ['circle.example/path'] }], /circles\[0\]\.domains\[0\] must be a host name or address/],
    [[{ name: 'a', port: 1, domains: ['https://circle.example'] }], /circles\[0\]\.domains\[0\] must be a host name/],
    [[{ name: 'a', port: 1, domains: ['circle.example:99999'] }], /circles\[0\]\.domains\[0\]/],
    [[{ name: 'a', port: 1, domains: ['a.example', 'wss://A.example'] }], /circles\[0\]\.domains\[1\] lists a\.example twice/],
    [[{ name: 'a', port: 1, allowed_origins: ['app.example'] }], /circles\[0\]\.allowed_origins\[0\] must be "\*" or an origin/],
    [[{ name: 'a', port: 1, allowed_origins: ['https://app.example/'] }], /circles\[0\]\.allowed_origins\[0\]/],
  ]
  for (const [value, message] of cases) {
    t.throws(() => parseCirclesConfig(value, ROOT), { code: 'CONFIG_INVALID', message }, JSON.stringify(value))
  }

  t.test('keeps domains and allowed origins', async (t) => {
    const [c] = parseCirclesConfig([{ name: 'a', port: 0, domains: ['circle.example', 'wss://tls.example'], allowed_origins: ['https://app.example', '*'] }], ROOT)
    t.same([c!.domains, c!.allowedOrigins], [['circle.example', 'wss://tls.example'], ['https://app.example', '*']])
  })

  t.test('maps limits onto peer settings', async (t) => {
    const [c] = parseCirclesConfig([{ name: 'a', port: 0, limits: { timeout_ms: 50, max_log_lines: 20, max_document_bytes: 10, max_documents: 7, mailbox_capacity: 3 } }], ROOT)
    t.same(c!.overrides, { limits: { timeoutMs: 50, maxLogLines: 20 }, quota: { maxDocumentBytes: 10, maxDocuments: 7 }, mailboxCapacity: 3 })
  })
})

t.test('launch({ configPath, dbPath })', async (t) => {
  const dir = t.testdir({
    'init.js': 'save_data("profile", { hello: "world" }); print("init ran"); 1',
    'broken.js': 'throw new Error("bad init")',
  })
  const config = join(dir, 'circles.json')
  writeFileSync(config, JSON.stringify([{ name: 'one', port: 0, script_path: 'init.js' }, { name: 'two', port: 0, policy: { run: 'anonymous' } }]))
  const dbPath = join(dir, 'db')

  t.test('persists key pairs with mode 0600 and finds the same keys again', async (t) => {
    const first = await launch({ configPath: config, dbPath, node: { sandbox: { processes: 1 }, logger: silentLogger() } })
    t.same(first.circles.map((c) => c.keyCreated), [true, true])
    t.equal(statSync(keyPathFor(dbPath, 'one')).mode & 0o777, 0o600)
    const keys = first.circles.map((c) => c.publicKey)
    t.ok(first.circles[0]!.url.startsWith('ws://127.0.0.1:'))
    const client = CirclesClient.builder(first.circles[0]!.url).withKey(generateKeyPair().secretKey).build()
    await client.connect()
    await client.authenticate()
    t.match(await client.play('load_data("profile")'), { output: '{"hello":"world"}' }, 'the init script ran in the circle context')
    client.close()
    await first.node.close()
    const second = await launch({ configPath: config, dbPath, node: { sandbox: { processes: 1 }, logger: silentLogger() } })
    t.same(second.circles.map((c) => c.keyCreated), [false, false])
    t.same(second.circles.map((c) => c.publicKey), keys, 'the same keys come back')
    await second.node.close()
  })

  t.test('a failing init script stops the launch with CONFIG_INVALID naming it', async (t) => {
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify([{ name: 'x', port: 0, script_path: 'broken.js' }]))
    await t.rejects(launch({ configPath: bad, dbPath, node: { sandbox: { processes: 1 }, logger: silentLogger() } }), {
      code: 'CONFIG_INVALID',
      message: /circles\[0\]\.script_path: the init script of "x" failed: SCRIPT_ERROR: Error: bad init/,
    })
    const missing = join(dir, 'missing.json')
    writeFileSync(missing, JSON.stringify([{ name: 'y', port: 0, script_path: 'nowhere.js' }]))
    await t.rejects(launch({ configPath: missing, dbPath, node: { sandbox: { processes: 1 }, logger: silentLogger() } }), {
      code: 'CONFIG_INVALID',
      message: /circles\[0\]\.script_path: cannot read/,
    })
  })

  t.test('an unreadable or invalid file is CONFIG_INVALID', async (t) => {
    await t.rejects(launch({ configPath: join(dir, 'nope.json'), dbPath }), { code: 'CONFIG_INVALID', message: /cannot read/ })
    writeFileSync(join(dir, 'junk.json'), '{ not json')
    await t.rejects(launch({ configPath: join(dir, 'junk.json'), dbPath }), { code: 'CONFIG_INVALID', message: /not valid JSON/ })
  })
})

t.test('circles launch (the built command) as a new user runs it', async (t) => {
  const dir = t.testdir()
  // Its own process group, like a terminal session: Ctrl-C signals every process in it.
  const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'dist/src/cli/main.js'), 'launch', '--db-path', join(dir, 'db')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // Already gone.
    }
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      if (/"msg":"serving /.test(stdout)) resolve()
    })
    child.on('exit', () => reject(new Error(`launch exited early: ${stderr}${stdout}`)))
  })
  // Piped, the log is JSON lines: one event per served circle, then the summary.
  const events = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(events.find((e) => e['circle'] === 'alice'), { msg: 'circle alice served', public_key: /^0[23][0-9a-f]{64}$/, url: 'ws://127.0.0.1:8090/', new_key: true })
  t.match(events.find((e) => e['circle'] === 'board'), { url: 'ws://127.0.0.1:8091/' })
  t.match(events.find((e) => /^serving/.test(String(e['msg']))), { circles: 2, admin: 'http://127.0.0.1:9464', sandbox_pids: [Number] })

  await t.test('the README walkthrough reaches the demo circle with plain ws + an Ethereum-style signer', async (t) => {
    const run = spawn(process.execPath, [join(ROOT, 'examples/walkthrough.mjs'), 'ws://127.0.0.1:8090/'], { cwd: ROOT })
    let out = ''
    run.stdout.on('data', (c: Buffer) => (out += c.toString()))
    run.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const code = await new Promise<number | null>((resolve) => run.on('exit', resolve))
    t.equal(code, 0, out)
    const answer = JSON.parse(out)
    t.match(answer, { me: /^0[23]/, circle: /^0[23]/, profile: { name: 'Alice' } })
  })

  await t.test('circles play reaches the board anonymously', async (t) => {
    const run = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'dist/src/cli/main.js'), 'play', '--url', 'ws://127.0.0.1:8091/', '-e', 'list_data("posts/")'], { cwd: ROOT })
    let out = ''
    run.stdout.on('data', (c: Buffer) => (out += c.toString()))
    t.equal(await new Promise((resolve) => run.on('exit', resolve)), 0)
    t.same(JSON.parse(out), ['posts/0000-welcome'])
  })

  await t.test('Ctrl-C (SIGINT to the process group) drains: a run in flight is answered, then exit 0', async (t) => {
    const client = CirclesClient.builder('ws://127.0.0.1:8090/').withKey(generateKeyPair().secretKey).build()
    await client.connect()
    await client.authenticate()
    const slow = client.play('const end = Date.now() + 400; while (Date.now() < end) {} "finished while draining"')
    await new Promise((r) => setTimeout(r, 100))
    process.kill(-child.pid!, 'SIGINT')
    t.match(await slow, { output: 'finished while draining' })
    t.equal(await exited, 0)
    t.match(stdout, /"signal":"SIGINT","msg":"draining"/)
    t.match(stdout, /"msg":"stopped"/)
  })
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../../src/identity/index.js'
import { CLI, launchCli } from '../helpers/launched.js'
import type { LogLine } from '../helpers/log-capture.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'
import { openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { waitUntil } from '../helpers/wait.js'

/**
 * The log of a whole session against a launched node, stdout piped (JSON lines): what an
 * operator needs is there — start-up, authentication failures with the address, a host's exit
 * with its stderr, an internal error's cause under the id the client was given, the drain — and
 * what is nobody's business is not: secret keys, documents, nonces, signatures, script source,
 * script output. Then, as a new user would: kill -9 a sandbox host taken from the log, see the
 * restart in the log and the metrics, and keep playing.
 */

const is =
  (msg: string, fields: Record<string, unknown> = {}) =>
  (line: LogLine) =>
    line.msg === msg && Object.entries(fields).every(([k, v]) => line[k] === v)

const BAD_AUTH_ATTEMPTS = 15
const AUTH_LOG_PER_SECOND = 10

async function signIn(url: string, pair: KeyPair): Promise<{ socket: RawSocket; nonce: string; signature: string }> {
  const socket = await openSocket(url)
  const nonce = (await socket.call('fetch_nonce', { pubkey: pair.publicKey })).result.nonce as string
  const signature = signPersonalMessage(nonce, pair.secretKey)
  const answer = await socket.call('authenticate', { pubkey: pair.publicKey, signature })
  if (answer.result?.authenticated !== true) throw new Error(`authenticate failed: ${JSON.stringify(answer)}`)
  return { socket, nonce, signature }
}

t.test('the log of a full session tells what happened and nothing private', async (t) => {
  const DOC_VALUE = `doc-value-${generateKeyPair().publicKey.slice(2, 18)}`
  const INIT_VALUE = `init-value-${generateKeyPair().publicKey.slice(2, 18)}`
  const PRINTED = `printed-${generateKeyPair().publicKey.slice(2, 18)}`
  const SCRIPT_MARKER = `script-marker-${generateKeyPair().publicKey.slice(2, 18)}`
  const node = await launchCli(t, {
    circles: [
      { name: 'alice', port: 0, script_path: 'init.js', limits: { timeout_ms: 5_000, cpu_ms: 5_000 } },
      // A heap this small makes the Map bomb abort V8 (the host dies) instead of timing out.
      { name: 'bomb', port: 0, policy: { run: 'authenticated', write: 'owner' }, limits: { memory_mb: 8, timeout_ms: 20_000, cpu_ms: 20_000 } },
    ],
    files: { 'init.js': `save_data("profile", { note: ${JSON.stringify(INIT_VALUE)} }); 1` },
    env: { CIRCLES_TEST_FAULTS: 'answer-throw' },
  })
  const { alice, bomb } = node.circles as Record<string, LogLine & { url: string; public_key: string }>

  t.test('start-up: one event per served circle with its name, key and URL, then a summary', async (t) => {
    for (const circle of [alice!, bomb!]) {
      t.match(circle, { level: 30, url: /^ws:\/\/127\.0\.0\.1:\d+\/$/, public_key: /^0[23][0-9a-f]{64}$/, new_key: true })
      const info = await fetch(circle.url.replace('ws', 'http') + 'info').then((r) => r.json())
      t.match(info, { name: circle['circle'], public_key: circle.public_key }, `${circle['circle']}: the logged key and URL are the ones served`)
    }
    t.match(node.serving, { circles: 2, admin: /^http:\/\/127\.0\.0\.1:\d+$/, sandbox_pids: [Number] })
    t.ok(node.lines.some(is('sandbox host started', { child: 'host-0', restarts: 0 })))
  })

  const aliceKeys = JSON.parse(readFileSync(join(node.dbPath, 'keys', 'alice.key'), 'utf8')) as { public_key: string; secret_key: string }
  const owner: KeyPair = { publicKey: aliceKeys.public_key, secretKey: aliceKeys.secret_key } as KeyPair
  const visitor = generateKeyPair()
  const { socket: session, nonce, signature } = await signIn(alice!.url, owner)

  t.test('plays: documents written and read, print output', async (t) => {
    const answer = await session.call('play', {
      script: `/* ${SCRIPT_MARKER} */ save_data("note", { text: ${JSON.stringify(DOC_VALUE)} }); print(${JSON.stringify(PRINTED)}); load_data("note").text`,
    })
    t.match(answer, { result: { output: DOC_VALUE, logs: [PRINTED] } })
    t.match(await session.call('play', { script: 'load_data("profile").note' }), { result: { output: INIT_VALUE } })
  })

  t.test('authentication failures are logged with the remote address, at most 10 a second', async (t) => {
    const from = node.mark()
    const started = performance.now()
    const answers = await Promise.all(
      Array.from({ length: BAD_AUTH_ATTEMPTS }, async () => {
        const socket = await openSocket(alice!.url)
        const n = (await socket.call('fetch_nonce', { pubkey: owner.publicKey })).result.nonce as string
        const answer = await socket.call('authenticate', { pubkey: owner.publicKey, signature: signPersonalMessage(n, visitor.secretKey) })
        socket.close()
        return answer.error?.data?.code as string
      }),
    )
    const spanMs = performance.now() - started
    t.same(new Set(answers), new Set(['INVALID_CREDENTIALS']))
    await node.waitFor(is('authentication failed'), undefined, from)
    const logged = node.lines.slice(from).filter(is('authentication failed'))
    for (const line of logged) t.match(line, { level: 40, remote: /^(::ffff:)?127\.0\.0\.1$/, code: 'INVALID_CREDENTIALS' })
    // Every failure happened within the span the client measured: under a second, the node logs
    // exactly its budget of ten; over, the rest of the budget of the next second at most.
    if (spanMs < 1_000) t.equal(logged.length, AUTH_LOG_PER_SECOND, `${BAD_AUTH_ATTEMPTS} failures in ${Math.round(spanMs)} ms: ten logged`)
    else t.ok(logged.length >= AUTH_LOG_PER_SECOND && logged.length <= BAD_AUTH_ATTEMPTS, `${logged.length} logged over ${Math.round(spanMs)} ms`)
    const metrics = await scrape(node.admin)
    t.equal(valueOf(metrics, 'circles_authentications_total', { result: 'INVALID_CREDENTIALS' }), BAD_AUTH_ATTEMPTS, 'every failure is counted')
  })

  t.test("an INTERNAL_ERROR's cause is logged under the correlation id the client got", async (t) => {
    const answer = await session.call('play', { script: '"FAULT_ANSWER_THROW"' })
    t.match(answer, { error: { code: -32603, data: { code: 'INTERNAL_ERROR', correlation_id: /^[0-9a-f]{16}$/ } } })
    const id = answer.error.data.correlation_id as string
    const line = await node.waitFor((l) => l['correlation_id'] === id)
    t.match(line, { level: 50, msg: 'internal error answering a request', where: 'play', remote: /127\.0\.0\.1$/, err: { message: 'fault injected: answer-throw', stack: String } })
    t.notMatch(JSON.stringify(answer), /fault injected/, 'the client learns nothing of the cause')
  })

  t.test('as a new user: kill -9 the sandbox host whose pid the log gave, see the restart logged and counted, keep playing', async (t) => {
    const started = node.lines.filter(is('sandbox host started', { child: 'host-0' })).at(-1)!
    const pid = started['host_pid'] as number
    const from = node.mark()
    process.kill(pid, 'SIGKILL')
    t.match(await node.waitFor(is('child exited', { supervisor: 'sandbox', child: 'host-0' }), undefined, from), { reason: new RegExp(`pid ${pid}\\) exited: signal SIGKILL`) })
    t.match(await node.waitFor(is('restarting child', { supervisor: 'sandbox', child: 'host-0' }), undefined, from), { level: 40 })
    const again = await node.waitFor(is('sandbox host started', { child: 'host-0', restarts: 1 }), undefined, from)
    t.not(again['host_pid'], pid)
    const metrics = await scrape(node.admin)
    t.equal(valueOf(metrics, 'circles_sandbox_host_restarts_total', { host: '0' }), 1)
    t.equal(valueOf(metrics, 'circles_supervisor_restarts_total', { supervisor: 'sandbox', child: 'host-0' }), 1)
    t.match(await session.call('play', { script: 'load_data("note").text.length' }), { result: { output: String(DOC_VALUE.length) } }, 'plays keep working')
  })

  t.test("a host killed by a script: its exit is logged with the tail of its stderr; its sender is quarantined in the circle", async (t) => {
    const from = node.mark()
    const { socket } = await signIn(bomb!.url, visitor)
    const answer = await socket.call('play', { script: 'const m = new Map(); for (let i = 0; ; i++) m.set(i, { i })' })
    t.match(answer, { error: { data: { code: 'WORKER_CRASHED' } } })
    const exit = await node.waitFor(is('sandbox host exited', { host: 0, blame: 'workload' }), undefined, from)
    t.match(exit, { level: 40, signal: 'SIGABRT', stderr: /heap|Heap|memory/ })
    t.match(await node.waitFor(is('child exited', { supervisor: 'sandbox', child: 'host-0' }), undefined, from), { blame: 'workload' })
    t.match(await node.waitFor(is('restarting child', { supervisor: 'sandbox', child: 'host-0' }), undefined, from), { counted: false })
    t.match(node.lines.slice(from).find(is('a script crashed its sandbox host: its origin is quarantined in the circle')), { circle: bomb!.public_key })
    t.match(await socket.call('play', { script: '1' }), { error: { data: { code: 'RATE_LIMITED', limit: 'quarantine' } } })
    socket.close()
    await node.waitFor(is('sandbox host started', { child: 'host-0', restarts: 2 }), undefined, from)
    t.match(await session.call('play', { script: '"alice is unaffected"' }), { result: { output: 'alice is unaffected' } })
  })

  t.test('drain progress, then exit 0', async (t) => {
    const from = node.mark()
    const slow = session.call('play', { script: 'save_data("started", 1); const e = Date.now() + 1500; while (Date.now() < e) {} "drained"' }, 'slow')
    const dataDir = join(node.dbPath, owner.publicKey, 'data')
    await waitUntil(() => readdirSync(dataDir).some((f) => f.startsWith('started')), 'the slow run started')
    node.child.kill('SIGTERM')
    t.match(await slow, { id: 'slow', result: { output: 'drained' } }, 'the run in flight is answered')
    t.same(await node.exited, { code: 0, signal: null })
    const after = node.lines.slice(from)
    t.match(after.find(is('draining')), { signal: 'SIGTERM' })
    t.match(after.find(is('draining: no new connections; finishing requests in flight')), { connections: 1, tasks: 1 })
    const stopped = after.find(is('stopped'))
    t.match(stopped, { drain_ms: Number })
    if ((stopped?.['drain_ms'] as number) >= 1_100) t.match(after.find(is('draining: still in flight')), { connections: 1, elapsed_ms: Number }, 'a drain over a second reports progress')
  })

  t.test('the whole log: JSON lines, and no secret, document, nonce, signature, script or output', async (t) => {
    await node.exited
    const text = node.stdout() + node.stderr()
    t.equal(node.lines.filter((l) => l.level === -1).length, 0, 'every stdout line is JSON')
    for (const line of node.lines) t.ok(typeof line['time'] === 'number' && typeof line['pid'] === 'number' && typeof line.msg === 'string', `${line.msg}: time, pid, msg`)
    const secrets: Record<string, string> = {
      "alice's secret key": owner.secretKey,
      "the visitor's secret key": visitor.secretKey,
      "bomb's secret key": (JSON.parse(readFileSync(join(node.dbPath, 'keys', 'bomb.key'), 'utf8')) as { secret_key: string }).secret_key,
      'a document value': DOC_VALUE,
      'an init-script document value': INIT_VALUE,
      'a nonce': nonce,
      'a signature': signature.replace(/^0x/, ''),
      'script source': SCRIPT_MARKER,
      'print output': PRINTED,
    }
    for (const [what, value] of Object.entries(secrets)) t.notOk(text.toLowerCase().includes(value.toLowerCase()), `${what} is not in the log`)
  })
})

t.test('in a terminal the log is readable text, piped it is JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'circles-tty-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ name: 'alice', port: 0 }]))
  const command = [process.execPath, '--no-node-snapshot', CLI, 'launch', '--config', join(dir, 'circles.json'), '--db-path', join(dir, 'db'), '--sandbox-processes', '1', '--admin-port', '0']
  // util-linux `script` gives the command a pseudo-terminal, as an operator's shell would.
  const quoted = command.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const env = { ...process.env }
  delete env['CIRCLES_LOG_LEVEL']
  delete env['CIRCLES_TEST_FAULTS']
  const tty = spawn('script', ['-qfec', `exec ${quoted}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let out = ''
  tty.stdout.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((resolve) => tty.on('close', resolve))
  t.teardown(() => tty.kill('SIGKILL'))
  await waitUntil(() => /serving 1 circle/.test(out), 'the node is serving')
  // script's child (the node, exec'd) is the one to signal, as Ctrl-C in a terminal would.
  const nodePid = Number(readFileSync(`/proc/${tty.pid}/task/${tty.pid}/children`, 'utf8').trim().split(/\s+/)[0])
  process.kill(nodePid, 'SIGINT')
  t.equal(await exited, 0)
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '')
  t.match(plain, /INFO: circle alice served at http:\/\/127\.0\.0\.1:\d+\/\n\s+circle: "alice"\n\s+public_key: "0[23][0-9a-f]{64}"\n\s+url: "ws:\/\/127\.0\.0\.1:\d+\/"/)
  t.match(plain, /INFO: serving 1 circle\(s\)/)
  t.match(plain, /INFO: stopped/)
  t.notOk(plain.split('\n').some((line) => line.startsWith('{')), 'no JSON line')
  t.match(out, /\x1b\[3\dm/, 'coloured')
})

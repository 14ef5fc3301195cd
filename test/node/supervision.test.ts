import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Faults } from '../../src/faults/index.js'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import type { CircleNode } from '../../src/node/index.js'
import type { SupervisorTree } from '../../src/supervisor/index.js'
import { captureLog, type LogCapture, type LogLine } from '../helpers/log-capture.js'
import { startNode } from '../helpers/node.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { waitUntil } from '../helpers/wait.js'

/**
 * The node's supervision tree at work, grouped as an OTP suite would: each kind of child killed
 * the way it dies in production, and each strategy the tree uses. Every wait is on the tree's own
 * events (its log lines), on an exit, or on a state the test can observe — never on a delay.
 */

const LONG_LIMITS = { timeoutMs: 60_000, cpuMs: 60_000 }

const is =
  (msg: string, fields: Record<string, unknown> = {}) =>
  (line: LogLine) =>
    line.msg === msg && Object.entries(fields).every(([k, v]) => line[k] === v)

function child(tree: SupervisorTree, path: string): SupervisorTree['children'][number] {
  let node: SupervisorTree | SupervisorTree['children'][number] = tree
  for (const id of path.split('/')) {
    const next: SupervisorTree['children'][number] | undefined = (node as SupervisorTree).children.find((c) => c.id === id)
    if (next === undefined) throw new Error(`no ${path} in the tree`)
    node = next
  }
  return node as SupervisorTree['children'][number]
}

/** A peer context whose runs may be long, owned by the caller returned. */
async function longPeer(node: CircleNode): Promise<KeyPair> {
  const pair = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: pair.publicKey, policy: { run: 'owner', write: 'owner' }, limits: LONG_LIMITS })
  return pair
}

/**
 * Start a run that never ends in `pair`'s context and resolve once it is executing in its sandbox
 * host (it wrote a document first), with the index of that host and the run's outcome to come.
 */
let runs = 0
async function runForever(node: CircleNode, dbPath: string, pair: KeyPair) {
  // A document of its own per run: one left by an earlier run must not pass for this one's.
  const marker = `started-${++runs}`
  const outcome = node.peers.play(pair.publicKey, { caller: pair.publicKey, script: `save_data("${marker}", 1); while (true) {}` }).then(
    (result) => ({ ok: true as const, result }),
    (error: { code?: string }) => ({ ok: false as const, code: error.code }),
  )
  const dataDir = join(dbPath, pair.publicKey, 'data')
  await waitUntil(() => readdirSync(dataDir).includes(`${marker}.json`), 'the endless run is executing')
  const busy = node.sandbox.stats.filter((h) => h.queued > 0).map((h) => h.index)
  if (busy.length !== 1) throw new Error(`expected one busy host, found ${JSON.stringify(node.sandbox.stats)}`)
  return { host: busy[0]!, outcome }
}

/** Kill a host process and wait until the sandbox supervisor has started its replacement. */
async function killHost(node: CircleNode, log: LogCapture, host: number) {
  const from = log.mark()
  const pid = node.sandbox.pids[host]!
  process.kill(pid, 'SIGKILL')
  const exited = await log.waitFor(is('child exited', { supervisor: 'sandbox', child: `host-${host}` }), undefined, from)
  const restarting = await log.waitFor(is('restarting child', { supervisor: 'sandbox', child: `host-${host}` }), undefined, from)
  const started = await log.waitFor(is('sandbox host started', { child: `host-${host}` }), undefined, from)
  return { pid, exited, restarting, started }
}

async function plays(node: CircleNode, count: number): Promise<string[]> {
  const outputs: string[] = []
  for (let i = 0; i < count; i++) {
    const pair = generateKeyPair()
    await node.peers.spawnPeer({ pubkey: pair.publicKey })
    outputs.push((await node.peers.play(pair.publicKey, { caller: pair.publicKey, script: `${i} * 2` })).output)
  }
  return outputs
}

t.test('sandbox hosts: permanent children of the sandbox supervisor (one_for_one)', async (t) => {
  const log = captureLog()
  // A probe that could be in flight when a host is killed would make the death the workload's.
  const { node, admin, dbPath } = await startNode(t, { logger: log.logger, sandbox: { processes: 2 }, probeIntervalMs: 3_600_000 })

  t.test('the tree as it runs: strategies, intensities, restart types', async (t) => {
    const tree = node.tree()
    t.match(tree, { id: 'root', strategy: 'one_for_one', intensity: 3, periodMs: 60_000, state: 'running' })
    t.same(
      tree.children.map((c) => [c.id, c.type, c.restart, c.status]),
      [
        ['admin', 'worker', 'permanent', 'running'],
        ['sandbox', 'supervisor', 'permanent', 'running'],
        ['verifier', 'worker', 'permanent', 'running'],
        ['peers', 'supervisor', 'permanent', 'running'],
        ['gateway:test', 'supervisor', 'permanent', 'running'],
      ],
    )
    t.match(child(tree, 'sandbox'), { strategy: 'one_for_one', intensity: 5, periodMs: 30_000 })
    t.same((child(tree, 'sandbox') as SupervisorTree).children.map((c) => [c.id, c.restart]), [
      ['host-0', 'permanent'],
      ['host-1', 'permanent'],
    ])
    t.match(child(tree, 'peers'), { strategy: 'one_for_one', dynamic: { restart: 'temporary' } })
    t.match(child(tree, 'gateway:test'), { strategy: 'rest_for_one', intensity: 3, periodMs: 60_000, dynamic: { count: 0, restart: 'temporary' } })
    t.same((child(tree, 'gateway:test') as SupervisorTree).children.map((c) => [c.id, c.restart]), [['listener', 'permanent']])
  })

  t.test('kill -9 of an idle host: logged, restarted once, counted, the other host untouched, plays carry on', async (t) => {
    const before = await scrape(admin)
    const otherPid = node.sandbox.pids[1]
    const { pid, exited, restarting, started } = await killHost(node, log, 0)
    t.match(exited, { level: 40, reason: new RegExp(`sandbox host 0 \\(pid ${pid}\\) exited: signal SIGKILL`), blame: 'infrastructure' })
    t.match(restarting, { level: 40, counted: true }, 'an idle host dying is an infrastructure failure: it counts toward intensity')
    t.match(started, { restarts: 1, host_pid: Number })
    t.not(started['host_pid'], pid, 'a new process')
    t.equal(node.sandbox.pids[0], started['host_pid'])
    t.equal(node.sandbox.pids[1], otherPid, 'one_for_one: the other host was not restarted')
    const after = await scrape(admin)
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels)
    t.equal(delta('circles_sandbox_host_restarts_total', { host: '0' }), 1)
    t.equal(delta('circles_sandbox_host_restarts_total', { host: '1' }), 0)
    t.equal(delta('circles_supervisor_restarts_total', { supervisor: 'sandbox', child: 'host-0' }), 1)
    t.equal(delta('circles_supervisor_restarts_total', { supervisor: 'sandbox', child: 'host-1' }), 0)
    t.equal(valueOf(after, 'circles_sandbox_host_up', { host: '0' }), 1)
    t.match(child(node.tree(), 'sandbox/host-0'), { status: 'running', restarts: 1 })
    t.match(child(node.tree(), 'sandbox/host-1'), { status: 'running', restarts: 0 })
    t.match(child(node.tree(), 'sandbox'), { status: 'running', restarts: 0 }, 'the root did not see it')
    // Sixteen fresh contexts spread over both hosts (one misses host 0 with odds of 2^-16).
    t.same(await plays(node, 16), Array.from({ length: 16 }, (_, i) => String(i * 2)))
  })

  t.test('kill -9 of a host while a script runs on it: WORKER_CRASHED, restarted without counting (blame workload)', async (t) => {
    const pair = await longPeer(node)
    const { host, outcome } = await runForever(node, dbPath, pair)
    const { exited, restarting } = await killHost(node, log, host)
    t.match(await outcome, { ok: false, code: 'WORKER_CRASHED' })
    t.match(exited, { blame: 'workload' })
    t.match(restarting, { counted: false })
    t.ok(log.lines.some(is('a script crashed its sandbox host: its origin is quarantined in the circle', { circle: pair.publicKey })))
    t.match(await node.peers.play(pair.publicKey, { caller: pair.publicKey, script: 'list_data("started-").length' }), { output: '1' }, 'the context serves its next play')
  })
})

t.test('sandbox restart intensity: deaths blamed on scripts never stop the node; idle deaths past it climb to the root', async (t) => {
  const log = captureLog()
  const { node, dbPath, admin } = await startNode(t, {
    logger: log.logger,
    sandbox: { processes: 1, intensity: 1, periodMs: 600_000 },
    probeIntervalMs: 3_600_000,
  })
  const pair = await longPeer(node)
  for (let i = 0; i < 2; i++) {
    const { host, outcome } = await runForever(node, dbPath, pair)
    const { restarting } = await killHost(node, log, host)
    t.match(await outcome, { ok: false, code: 'WORKER_CRASHED' }, `crash ${i + 1} answered`)
    t.match(restarting, { counted: false }, `crash ${i + 1} not counted`)
  }
  t.match(child(node.tree(), 'sandbox'), { state: 'running', status: 'running', restarts: 0 }, 'two script crashes, intensity 1: the sandbox supervisor carries on')
  t.match(child(node.tree(), 'sandbox/host-0'), { restarts: 2 })

  const first = await killHost(node, log, 0)
  t.match(first.restarting, { counted: true }, 'the first idle death is within intensity 1')
  t.notOk(log.lines.some(is('restart intensity exceeded: the supervisor gives up')))

  const from = log.mark()
  process.kill(node.sandbox.pids[0]!, 'SIGKILL')
  const escalated = await log.waitFor(is('restart intensity exceeded: the supervisor gives up', { supervisor: 'sandbox' }), undefined, from)
  t.match(escalated, { level: 50, child: 'host-0', reason: /sandbox host 0 .* exited: signal SIGKILL/ })
  const rootRestart = await log.waitFor(is('restarting child', { supervisor: 'root', child: 'sandbox' }), undefined, from)
  t.match(rootRestart, { counted: true })
  await log.waitFor(is('sandbox host started', { child: 'host-0', restarts: 0 }), undefined, from)
  await log.waitFor(is('started', { supervisor: 'root', child: 'sandbox' }), undefined, from)
  t.match(child(node.tree(), 'sandbox'), { state: 'running', status: 'running', restarts: 1 }, 'the root started a new sandbox supervisor')
  const metrics = await scrape(admin)
  t.equal(valueOf(metrics, 'circles_supervisor_escalations_total', { supervisor: 'sandbox' }), 1)
  t.equal(valueOf(metrics, 'circles_supervisor_restarts_total', { supervisor: 'root', child: 'sandbox' }), 1)
  t.equal(valueOf(metrics, 'circles_supervisor_restarts_total', { supervisor: 'sandbox', child: 'host-0' }), 3)
  t.match(await node.peers.play(pair.publicKey, { caller: pair.publicKey, script: '"still serving"' }), { output: 'still serving' })
})

t.test('the verifier: a permanent child of the root', async (t) => {
  const log = captureLog()
  const { node, circle, url, admin } = await startNode(t, { logger: log.logger })
  const before = node.verifier
  t.equal(before.threads.length, 1)
  const from = log.mark()
  await before.threads[0]!.terminate()
  const exited = await log.waitFor(is('child exited', { supervisor: 'root', child: 'verifier' }), undefined, from)
  t.match(exited, { reason: /verifier thread died/ })
  t.match(await log.waitFor(is('restarting child', { supervisor: 'root', child: 'verifier' }), undefined, from), { counted: true })
  await log.waitFor(is('started', { supervisor: 'root', child: 'verifier' }), undefined, from)
  t.not(node.verifier, before, 'a new verifier')
  t.match(child(node.tree(), 'verifier'), { status: 'running', restarts: 1 })
  const socket = await openSocket(url)
  t.match(await authenticate(socket, circle), { result: { authenticated: true } }, 'authentication works after the restart')
  t.match(await socket.call('play', { script: '"after"' }), { result: { output: 'after' } })
  socket.close()
  t.equal(valueOf(await scrape(admin), 'circles_supervisor_restarts_total', { supervisor: 'root', child: 'verifier' }), 1)
})

t.test('peer actors: temporary children of the peers supervisor', async (t) => {
  const log = captureLog()
  const { node } = await startNode(t, { logger: log.logger })
  const pair = generateKeyPair()
  // One run at a time in the sandbox: the tasks behind it wait in the actor's mailbox.
  await node.peers.spawnPeer({ pubkey: pair.publicKey, maxRunsInFlight: 1 })
  const play = (script: string) =>
    node.peers.play(pair.publicKey, { caller: pair.publicKey, script }).then(
      (r) => r.output,
      (e: { code: string }) => e.code,
    )

  t.test('killed: its queued tasks are answered WORKER_CRASHED, the run in the sandbox finishes, the next play is served', async (t) => {
    const running = play('"in the sandbox"')
    const queued = [play('"queued 1"'), play('"queued 2"')]
    const peersBefore = child(node.tree(), 'peers') as SupervisorTree
    t.equal(peersBefore.dynamic?.count, 1, 'one live actor')
    const from = log.mark()
    t.equal(node.peers.kill(pair.publicKey), true)
    t.same(await Promise.all(queued), ['WORKER_CRASHED', 'WORKER_CRASHED'])
    t.equal(await running, 'in the sandbox')
    const exited = await log.waitFor(is('child exited', { supervisor: 'peers', child: pair.publicKey }), undefined, from)
    t.match(exited, { level: 40, reason: /killed/ })
    t.equal((child(node.tree(), 'peers') as SupervisorTree).dynamic?.count, 0, 'forgotten, not restarted')
    t.equal(node.peers.stateOf(pair.publicKey), 'passivated')
    t.equal(await play('"served again"'), 'served again')
    t.notOk(log.lines.slice(from).some(is('restarting child')), 'nothing was restarted')
  })

  t.test('killed again and again: never counted, the peers supervisor carries on', async (t) => {
    for (let i = 0; i < 5; i++) {
      void play('"x"')
      t.equal(node.peers.kill(pair.publicKey), true)
    }
    t.equal(await play('"fine"'), 'fine')
    t.match(child(node.tree(), 'peers'), { state: 'running', status: 'running', restarts: 0 })
    t.notOk(log.lines.some(is('restart intensity exceeded: the supervisor gives up')))
  })
})

t.test('a port: rest_for_one supervisor of its listener and its connections', async (t) => {
  const log = captureLog()
  const faults = new Faults(['listener-crash'])
  const a = generateKeyPair()
  const b = generateKeyPair()
  const { node, admin } = await startNode(t, {
    logger: log.logger,
    faults,
    circles: [
      { name: 'a', keyPair: a, host: '127.0.0.1', port: 0 },
      { name: 'b', keyPair: b, host: '127.0.0.1', port: 0 },
    ],
  })
  const [portA, portB] = node.served
  const onA = [await openSocket(portA!.url), await openSocket(portA!.url)]
  await authenticate(onA[0]!, a)
  const onB = await openSocket(portB!.url)
  await authenticate(onB, b)
  t.equal((child(node.tree(), 'gateway:a') as SupervisorTree).dynamic?.count, 2)

  t.equal((await fetch(`http://127.0.0.1:${portA!.port}/__fault/listener-crash`)).status, 404, 'no request reaches the fault')
  const from = log.mark()
  t.equal(faults.trigger('listener-crash', 'a'), 1, "port a's listener heard the fault")
  const exited = await log.waitFor(is('child exited', { supervisor: 'gateway:a', child: 'listener' }), undefined, from)
  t.match(exited, { reason: 'fault injected: listener-crash' })
  t.match(await log.waitFor(is('restarting child', { supervisor: 'gateway:a', child: 'listener' }), undefined, from), { counted: true })
  const closes = await Promise.all(onA.map((s) => s.closed))
  t.same(closes, [{ code: 1001, reason: 'SHUTTING_DOWN' }, { code: 1001, reason: 'SHUTTING_DOWN' }], "the listener's connections were stopped with it")
  await log.waitFor(is('started', { supervisor: 'gateway:a', child: 'listener' }), undefined, from)

  t.equal(node.served[0]!.port, portA!.port)
  const again = await openSocket(`ws://127.0.0.1:${portA!.port}/`)
  t.match(await authenticate(again, a), { result: { authenticated: true } }, 'a new listener on the same port')
  t.match(await again.call('play', { script: '"new listener"' }), { result: { output: 'new listener' } })
  again.close()

  t.equal(onB.ws.readyState, onB.ws.OPEN, 'the other port was untouched')
  t.match(await onB.call('play', { script: '"other port"' }), { result: { output: 'other port' } })
  onB.close()
  t.match(child(node.tree(), 'gateway:a'), { status: 'running', restarts: 0, state: 'running' })
  t.match(child(node.tree(), 'gateway:a/listener'), { status: 'running', restarts: 1 })
  t.match(child(node.tree(), 'gateway:b/listener'), { status: 'running', restarts: 0 })
  const metrics = await scrape(admin)
  t.equal(valueOf(metrics, 'circles_supervisor_restarts_total', { supervisor: 'gateway:a', child: 'listener' }), 1)
  t.equal(valueOf(metrics, 'circles_supervisor_restarts_total', { supervisor: 'gateway:b', child: 'listener' }), 0)
})

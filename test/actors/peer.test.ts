import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createActor, getInitialSnapshot, getNextSnapshot, SimulatedClock, waitFor } from 'xstate'
import { PeerHost, peerMachine } from '../../src/actors/peer/index.js'
import { SandboxPool } from '../../src/sandbox/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { busyScript, someOverlap } from '../helpers/sandbox.js'

/** A PeerHost stopped at teardown (its live actors hold passivation timers). */
function hostFor(t: { testdir(): string; teardown(fn: () => unknown): void }, pool: SandboxPool): PeerHost {
  const peers = new PeerHost({ dbPath: t.testdir(), pool })
  t.teardown(() => peers.stop())
  return peers
}

t.test('peerMachine', async (t) => {
  t.test('starts idle and takes WORK into processing', async (t) => {
    const s0 = getInitialSnapshot(peerMachine, { passivateAfterMs: 1000, drain: async () => {} })
    t.equal(s0.value, 'idle')
    t.equal(getNextSnapshot(peerMachine, s0, { type: 'WORK' }).value, 'processing')
    t.equal(getNextSnapshot(peerMachine, s0, { type: 'STOP' }).value, 'stopped')
    t.equal(getNextSnapshot(peerMachine, s0, { type: 'STOP' }).status, 'done')
  })

  // Timers run on a simulated clock; a drain's end is awaited as the state it leads to.
  t.test('drains, idles, then passivates after the idle timeout', async (t) => {
    const clock = new SimulatedClock()
    let drains = 0
    const actor = createActor(peerMachine, { input: { passivateAfterMs: 30, drain: async () => void drains++ }, clock })
    actor.start()
    actor.send({ type: 'WORK' })
    t.equal(actor.getSnapshot().value, 'processing')
    await waitFor(actor, (s) => s.matches('idle'))
    t.equal(drains, 1)
    t.equal(actor.getSnapshot().context.drains, 1)
    clock.increment(29)
    t.equal(actor.getSnapshot().value, 'idle', 'not before the idle timeout')
    clock.increment(1)
    t.equal(actor.getSnapshot().value, 'passivated')
    t.equal(actor.getSnapshot().status, 'done')
  })

  t.test('WORK while idle restarts the passivation timer', async (t) => {
    const clock = new SimulatedClock()
    const actor = createActor(peerMachine, { input: { passivateAfterMs: 60, drain: async () => {} }, clock })
    actor.start()
    clock.increment(40)
    actor.send({ type: 'WORK' })
    await waitFor(actor, (s) => s.matches('idle'))
    clock.increment(40)
    t.equal(actor.getSnapshot().value, 'idle', 'not passivated 80 ms after start: the timer restarted')
    clock.increment(19)
    t.equal(actor.getSnapshot().value, 'idle', 'nor 59 ms after the WORK')
    clock.increment(1)
    t.equal(actor.getSnapshot().value, 'passivated', '60 ms after the WORK')
  })

  t.test('a watched context is not passivated: its idle timeout starts over until nobody watches', async (t) => {
    const clock = new SimulatedClock()
    let watched = true
    const actor = createActor(peerMachine, { input: { passivateAfterMs: 1000, drain: async () => {}, watched: () => watched }, clock })
    actor.start()
    clock.increment(1000)
    t.equal(actor.getSnapshot().value, 'idle', 'watched at the timeout: idle again')
    clock.increment(1000)
    t.equal(actor.getSnapshot().value, 'idle', 'and again')
    watched = false
    clock.increment(999)
    t.equal(actor.getSnapshot().value, 'idle', 'the timeout runs from its last start')
    clock.increment(1)
    t.equal(actor.getSnapshot().value, 'passivated')
  })

  t.test('STOP during processing waits for the running drain', async (t) => {
    let release: () => void = () => {}
    const actor = createActor(peerMachine, { input: { passivateAfterMs: 1000, drain: () => new Promise<void>((r) => (release = r)) } })
    actor.start()
    actor.send({ type: 'WORK' })
    actor.send({ type: 'STOP' })
    t.equal(actor.getSnapshot().value, 'processing', 'still processing')
    t.equal(actor.getSnapshot().context.stopRequested, true)
    release()
    await waitFor(actor, (s) => s.status === 'done')
    t.equal(actor.getSnapshot().value, 'stopped', 'stopped once the drain ended')
  })
})

t.test('PeerHost', async (t) => {
  const pool = new SandboxPool({ processes: 2 })
  await pool.start()
  t.teardown(() => pool.close())

  t.test('runs 100 scripts sent in sequence to one context in their order', async (t) => {
    const peers = hostFor(t, pool)
    const owner = generateKeyPair().publicKey
    const peer = await peers.spawnPeer({ pubkey: owner })
    const runs = Array.from({ length: 100 }, (_, i) =>
      peer.play({ caller: owner, script: `const log = load_data("log") || []; log.push(${i}); save_data("log", log); log.length` }),
    )
    const outcomes = await Promise.all(runs)
    t.same(outcomes.map((o) => o.output), Array.from({ length: 100 }, (_, i) => String(i + 1)), 'each run saw the ones before it')
    const final = await peer.play({ caller: owner, script: 'load_data("log")' })
    t.same(JSON.parse(final.output), Array.from({ length: 100 }, (_, i) => i), 'the document holds them in order')
  })

  t.test('runs 10 contexts in parallel', async (t) => {
    const peers = hostFor(t, pool)
    const keys = Array.from({ length: 10 }, () => generateKeyPair().publicKey)
    for (const pubkey of keys) await peers.spawnPeer({ pubkey, limits: { timeoutMs: 5000, cpuMs: 5000 } })
    const outcomes = await Promise.all(keys.map((pubkey) => peers.play(pubkey, { caller: pubkey, script: busyScript(100) })))
    const intervals = outcomes.map((o) => JSON.parse(o.output) as [string, number, number])
    t.same(intervals.map(([key]) => key), keys, 'each ran in its own context')
    // Contexts are spread over the two sandbox hosts: runs of different contexts overlap in time.
    t.ok(someOverlap(intervals), 'runs of different contexts ran at the same time')
    t.same(peers.size, { registered: 10, active: 10 })
  })

  t.test('enforces the run policy and answers OVERLOADED past the mailbox bound', async (t) => {
    const peers = hostFor(t, pool)
    const owner = generateKeyPair().publicKey
    const stranger = generateKeyPair().publicKey
    await peers.spawnPeer({ pubkey: owner, policy: { run: 'owner' }, mailboxCapacity: 3 })
    await t.rejects(peers.play(owner, { caller: stranger, script: '1' }), { code: 'FORBIDDEN' })
    await t.rejects(peers.play(owner, { caller: '', script: '1' }), { code: 'AUTH_REQUIRED' })
    const accepted = [1, 2, 3].map(() => peers.play(owner, { caller: owner, script: '1' }))
    await t.rejects(peers.play(owner, { caller: owner, script: '1' }), { code: 'OVERLOADED' })
    t.equal((await Promise.all(accepted)).length, 3)
    await t.rejects(peers.play(generateKeyPair().publicKey, { caller: owner, script: '1' }), { code: 'UNKNOWN_CIRCLE' })
  })

  t.test('passivates an idle context and rebuilds it from disk on the next message', async (t) => {
    // The peers supervisor reports each actor's end: wait on that, not on a clock.
    const exits: { id: string; normal: boolean }[] = []
    const waiters: (() => void)[] = []
    const peers = new PeerHost({
      dbPath: t.testdir(),
      pool,
      onSupervisorEvent: (event) => {
        if (event.type !== 'child_exited') return
        exits.push({ id: event.id, normal: event.reason.type === 'normal' })
        for (const w of waiters.splice(0)) w()
      },
    })
    t.teardown(() => peers.stop())
    const passivated = () => new Promise<void>((resolve) => waiters.push(resolve))
    const owner = generateKeyPair().publicKey
    await peers.spawnPeer({ pubkey: owner, passivateAfterMs: 50 })
    const first = passivated()
    await peers.play(owner, { caller: owner, script: 'save_data("kept", "on disk")' })
    t.not(peers.stateOf(owner), 'passivated', 'a live actor right after its run')
    await first
    t.same(exits, [{ id: owner, normal: true }], 'the actor ended normally: passivated')
    t.equal(peers.stateOf(owner), 'passivated')
    t.same(peers.size, { registered: 1, active: 0 })
    t.match(await peers.play(owner, { caller: owner, script: 'load_data("kept")' }), { output: 'on disk' })
    t.equal(peers.counters.passivations, 1)
    t.equal(peers.counters.activations, 2)
  })

  t.test('a killed context answers its queued tasks WORKER_CRASHED, the running one with its outcome, and is rebuilt', async (t) => {
    const peers = hostFor(t, pool)
    const owner = generateKeyPair().publicKey
    await peers.spawnPeer({ pubkey: owner, limits: { timeoutMs: 3000, cpuMs: 3000 }, maxRunsInFlight: 1 })
    const running = peers.play(owner, { caller: owner, script: 'const end = Date.now() + 300; while (Date.now() < end) {} save_data("ran", true); 1' })
    const queued = peers.play(owner, { caller: owner, script: '2' })
    const queuedRefused = t.rejects(queued, { code: 'WORKER_CRASHED' })
    // A context starts a run as it takes it (one in flight here): the first is the sandbox's
    // already, the second waits in the mailbox.
    t.equal(peers.stateOf(owner), 'processing', 'the first run started when it was sent')
    t.ok(peers.kill(owner))
    await queuedRefused
    // The run already in the sandbox completes: a kill never reports work that reached the disk as lost.
    t.match(await running, { output: '1' })
    t.match(await peers.play(owner, { caller: owner, script: 'load_data("ran")' }), { output: 'true' })
    t.match(await peers.play(owner, { caller: owner, script: '"back"' }), { output: 'back' })
    t.equal(peers.counters.crashes, 1)
  })

  t.test('stop() drains: the running batch finishes, queued work is answered SHUTTING_DOWN', async (t) => {
    const peers = hostFor(t, pool)
    const owner = generateKeyPair().publicKey
    await peers.spawnPeer({ pubkey: owner, maxRunsInFlight: 1 })
    const first = peers.play(owner, { caller: owner, script: 'const end = Date.now() + 100; while (Date.now() < end) {} "first"' })
    const second = peers.play(owner, { caller: owner, script: '"second"' })
    t.equal(peers.stateOf(owner), 'processing', 'the first run started when it was sent; the second waits')
    // Queued work is answered as the stop begins, not once the running run is done.
    const refused = t.rejects(second, { code: 'SHUTTING_DOWN' })
    await peers.stop()
    t.match(await first, { output: 'first' })
    await refused
    await t.rejects(peers.play(owner, { caller: owner, script: '1' }), { code: 'SHUTTING_DOWN' })
  })
})

/** One context on a sandbox of one host of its own, all stopped at teardown. */
async function onePeer(
  t: { testdir(): string; teardown(fn: () => unknown): void },
  overrides: { passivateAfterMs?: number; maxRunsInFlight?: number },
): Promise<{ peers: PeerHost; owner: string }> {
  const pool = new SandboxPool({ processes: 1 })
  await pool.start()
  t.teardown(() => pool.close())
  const peers = hostFor(t, pool)
  const owner = generateKeyPair().publicKey
  await peers.spawnPeer({ pubkey: owner, ...overrides })
  return { peers, owner }
}

t.test('PeerActor: a task arriving as a drain ends is not stranded', async (t) => {
  const { peers, owner } = await onePeer(t, { passivateAfterMs: 60_000 })
  // Each answer queues the next request a few microtask hops later: some of those land after
  // the drain has returned but before the machine has settled in idle. None may be stranded.
  for (const hops of [0, 1, 2, 3, 4]) {
    const delay = (value: string) => {
      let p = Promise.resolve(value)
      for (let h = 0; h < hops; h++) p = p.then((v) => v)
      return p
    }
    const next = (i: number): Promise<string> =>
      peers.play(owner, { caller: owner, script: String(i) }).then((o) => (i < 60 ? delay(o.output).then(() => next(i + 1)) : o.output))
    t.equal(await next(0), '60', `next request ${hops} extra hops after each answer`)
  }
})

t.test('PeerActor: a run answered is not held by the mailbox', { timeout: 60_000 }, async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const { peers, owner } = await onePeer(t, { passivateAfterMs: 60_000 })
  await peers.play(owner, { caller: owner, script: '"warm"' })
  gc()
  const before = process.memoryUsage().heapUsed
  // 100 answers of 1 MB, each dropped by its caller: the mailbox slots they passed through
  // (kept until the queue is compacted past 1,024) must not keep them alive.
  for (let i = 0; i < 100; i++) await peers.play(owner, { caller: owner, script: '"x".repeat(1000000)' })
  gc()
  const grown = process.memoryUsage().heapUsed - before
  t.ok(grown < 30e6, `the heap grew by ${(grown / 1e6).toFixed(1)} MB after 100 MB of answers`)
})

t.test('PeerActor: a task whose signal aborted before it started never runs', async (t) => {
  const { peers, owner } = await onePeer(t, { maxRunsInFlight: 2 })
  const increment = 'const n = (load_data("n") ?? 0) + 1; save_data("n", n); n'
  const cut = new AbortController()
  const runs = Array.from({ length: 6 }, () => peers.dispatch(owner, { caller: owner, script: increment, signal: cut.signal }))
  // The first two were handed to the sandbox as they arrived; the other four wait in the mailbox.
  cut.abort()
  const codes = (await Promise.all(runs)).map((r) => r.outcome.code ?? 'ok')
  t.same(codes, ['ok', 'ok', 'CONNECTION_CLOSED', 'CONNECTION_CLOSED', 'CONNECTION_CLOSED', 'CONNECTION_CLOSED'])
  t.equal((await peers.play(owner, { caller: owner, script: 'load_data("n")' })).output, '2', 'only the two that started ran')
})

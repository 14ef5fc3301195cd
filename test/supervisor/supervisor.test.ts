import t from 'tap'
import { SimulatedClock } from 'xstate'
import {
  Supervisor,
  handleFor,
  type ChildHandle,
  type ChildSpec,
  type ExitReason,
  type Restart,
  type Shutdown,
  type SupervisorEvent,
  type SupervisorOptions,
} from '../../src/supervisor/index.js'

/**
 * Every test waits on the supervisor's own events (onEvent, onExit) or on promises the children
 * control — never on the clock. Restart intensity runs on a simulated clock where the period
 * matters.
 */

/** The events a supervisor emitted, and a way to wait for one (already emitted or to come). */
function recorder() {
  const events: SupervisorEvent[] = []
  const waiters: { match: (e: SupervisorEvent) => boolean; resolve: (e: SupervisorEvent) => void }[] = []
  const onEvent = (event: SupervisorEvent) => {
    events.push(event)
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.match(event)) waiters.splice(i, 1)[0]!.resolve(event)
  }
  /** The next matching event emitted after `from` events (default: any, including past ones). */
  const next = (match: (e: SupervisorEvent) => boolean, from = 0): Promise<SupervisorEvent> => {
    const found = events.slice(from).find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve) => waiters.push({ match, resolve }))
  }
  const started = (id: string, restarts: number) => next((e) => e.type === 'child_started' && e.id === id && e.restarts === restarts)
  const brief = () => events.map((e) => `${e.type} ${e.id}${e.type === 'child_restarted' ? (e.counted ? '' : ' (not counted)') : ''}`)
  return { events, onEvent, next, started, brief }
}

/** A child that records what happens to it and can be made to exit. */
function harness() {
  const log: string[] = []
  const live = new Map<string, ReturnType<typeof handleFor>>()
  const spec = (
    id: string,
    restart: Restart = 'permanent',
    shutdown: Shutdown = 1000,
    opts: { stop?: () => Promise<void>; failStart?: () => boolean } = {},
  ): ChildSpec => ({
    id,
    restart,
    shutdown,
    start: async () => {
      if (opts.failStart?.()) {
        log.push(`fail-start ${id}`)
        throw new Error(`${id} cannot start`)
      }
      log.push(`start ${id}`)
      const handle = handleFor(
        async () => {
          if (opts.stop) await opts.stop()
          log.push(`stop ${id}`)
        },
        () => log.push(`kill ${id}`),
      )
      live.set(id, handle)
      return handle
    },
  })
  const crash = (id: string, blame?: 'workload') =>
    live.get(id)!.exit(blame === undefined ? { type: 'error', error: new Error(`${id} crashed`) } : { type: 'error', error: new Error(`${id} crashed`), blame })
  const finish = (id: string) => live.get(id)!.exit({ type: 'normal' })
  return { log, spec, crash, finish }
}

/** A supervisor with a recorder, and a promise of its exit. */
function supervise(options: SupervisorOptions) {
  const events = recorder()
  const sup = new Supervisor({ ...options, onEvent: events.onEvent })
  const exited = new Promise<ExitReason>((resolve) => sup.onExit(resolve))
  return { sup, events, exited }
}

t.test('Supervisor start', async (t) => {
  t.test('starts children in order', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    t.same(h.log, ['start a', 'start b', 'start c'])
    t.same(events.brief(), ['child_started a', 'child_started b', 'child_started c'])
    t.same(sup.whichChildren().map((c) => c.status), ['running', 'running', 'running'])
    await sup.stop()
  })

  t.test('stops the children already started when one fails to start, and throws', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('a'), h.spec('b'), h.spec('c', 'permanent', 1000, { failStart: () => true })] })
    await t.rejects(sup.start(), /c cannot start/)
    t.same(h.log, ['start a', 'start b', 'fail-start c', 'stop b', 'stop a'])
    t.notOk(sup.running)
  })

  t.test('startChild adds a child; duplicates are a tagged result, not a throw', async (t) => {
    const h = harness()
    const sup = new Supervisor()
    await sup.start()
    t.same(await sup.startChild(h.spec('x')), { ok: true })
    t.same(await sup.startChild(h.spec('x')), { ok: false, reason: 'already_present' })
    t.match(await sup.startChild(h.spec('y', 'permanent', 1000, { failStart: () => true })), { ok: false, reason: 'start_failed' })
    t.same(await sup.terminateChild('nope'), { ok: false, reason: 'not_found' })
    t.same(await sup.removeChild('x'), { ok: true })
    t.same(sup.whichChildren(), [])
    await sup.stop()
    t.same(await sup.startChild(h.spec('z')), { ok: false, reason: 'stopped' })
  })

  t.test('checks its options', async (t) => {
    t.throws(() => new Supervisor({ flags: { strategy: 'one_for_some' as never } }), { code: 'INVALID_OPTION', message: /flags.strategy/ })
    t.throws(() => new Supervisor({ flags: { intensity: -1 } }), { code: 'INVALID_OPTION', message: /flags.intensity/ })
    t.throws(() => new Supervisor({ flags: { periodMs: 0 } }), { code: 'INVALID_OPTION', message: /flags.periodMs/ })
    const h = harness()
    t.throws(() => new Supervisor({ children: [{ ...h.spec('a'), shutdown: -5 }] }), { code: 'INVALID_OPTION', message: /shutdown/ })
    t.throws(() => new Supervisor({ children: [{ ...h.spec('a'), restart: 'sometimes' as never }] }), { code: 'INVALID_OPTION', message: /restart/ })
    t.throws(() => new Supervisor({ children: [h.spec('a'), h.spec('a')] }), { code: 'INVALID_OPTION', message: /duplicate/ })
    const sup = new Supervisor()
    await sup.start()
    await t.rejects(sup.start(), { code: 'INVALID_OPTION', message: /started once/ })
    await sup.stop()
  })
})

t.test('Supervisor.startChildSync (children created on a hot path)', async (t) => {
  t.test('registers a synchronously started child before it returns: an exit right away is seen', async (t) => {
    const { sup, events } = supervise({ dynamic: { restart: 'temporary' } })
    await sup.start()
    const handle = handleFor(async () => {})
    t.same(sup.startChildSync({ id: 'conn-1', restart: 'temporary', shutdown: 100, start: () => handle }), { ok: true })
    t.same(sup.whichChildren(), [{ id: 'conn-1', status: 'running', restarts: 0 }])
    t.equal(sup.child('conn-1'), handle)
    handle.exit({ type: 'error', error: new Error('socket reset') })
    t.same(sup.whichChildren(), [], 'a temporary child is forgotten at once')
    t.match(events.events.at(-1), { type: 'child_exited', supervisor: 'supervisor', id: 'conn-1', reason: { type: 'error', error: { message: 'socket reset' } } })
    await sup.stop()
  })

  t.test('sees a child that exited before its start returned (its exit listener comes late)', async (t) => {
    const { sup, events } = supervise({ dynamic: { restart: 'temporary' } })
    await sup.start()
    const handle = handleFor(async () => {})
    handle.exit({ type: 'error', error: new Error('closed during the handshake') })
    t.same(sup.startChildSync({ id: 'conn-2', restart: 'temporary', shutdown: 100, start: () => handle }), { ok: true })
    t.same(sup.whichChildren(), [], 'forgotten, not left running')
    t.match(events.events.at(-1), { type: 'child_exited', id: 'conn-2', reason: { type: 'error', error: { message: 'closed during the handshake' } } })
    await sup.stop()
  })

  t.test('refuses duplicates, a stopped supervisor, a start that throws, and an asynchronous start', async (t) => {
    const sup = new Supervisor()
    await sup.start()
    const sync = (id: string, start: ChildSpec['start']) => sup.startChildSync({ id, restart: 'temporary', shutdown: 100, start })
    t.same(sync('a', () => handleFor(async () => {})), { ok: true })
    t.same(sync('a', () => handleFor(async () => {})), { ok: false, reason: 'already_present' })
    t.match(
      sync('b', () => {
        throw new Error('no socket')
      }),
      { ok: false, reason: 'start_failed', error: { message: 'no socket' } },
    )
    let killed!: () => void
    const wasKilled = new Promise<void>((resolve) => (killed = resolve))
    t.match(
      sync('c', async () => handleFor(async () => {}, killed)),
      { ok: false, reason: 'start_failed', error: { code: 'INVALID_OPTION', message: /asynchronous/ } },
    )
    await wasKilled
    t.pass('the child an asynchronous start brought up anyway was killed')
    t.same(sup.whichChildren().map((c) => c.id), ['a'])
    t.throws(() => sync('', () => handleFor(async () => {})), { code: 'INVALID_OPTION', message: /spec.id/ })
    await sup.stop()
    t.same(sync('d', () => handleFor(async () => {})), { ok: false, reason: 'stopped' })
  })
})

t.test('Supervisor stop', async (t) => {
  t.test('stops children in reverse order and exits normally', async (t) => {
    const h = harness()
    const { sup, exited } = supervise({ children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    await sup.stop()
    t.same(h.log.slice(3), ['stop c', 'stop b', 'stop a'])
    t.same(await exited, { type: 'normal' })
  })

  t.test('kills a child that does not stop within its shutdown time', async (t) => {
    const h = harness()
    // This child never stops on its own: only its shutdown time ends the wait.
    const sup = new Supervisor({ children: [h.spec('stuck', 'permanent', 30, { stop: () => new Promise(() => {}) })] })
    await sup.start()
    await sup.stop()
    t.same(h.log, ['start stuck', 'kill stuck'])
  })

  t.test('kills a brutal_kill child without asking it to stop', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('b', 'permanent', 'brutal_kill')] })
    await sup.start()
    await sup.stop()
    t.same(h.log, ['start b', 'kill b'])
  })

  t.test('dynamic children are stopped together, then the static ones in reverse order', async (t) => {
    const h = harness()
    // Each dynamic child's stop waits until all three have been asked to stop: stopped one after
    // the other, the first would wait out its shutdown time and be killed.
    const asked: string[] = []
    let open!: () => void
    const allAsked = new Promise<void>((resolve) => (open = resolve))
    const together = (id: string) => async () => {
      asked.push(id)
      if (asked.length === 3) open()
      await allAsked
    }
    const sup = new Supervisor({ children: [h.spec('listener')], dynamic: { restart: 'temporary' } })
    await sup.start()
    for (const id of ['conn-1', 'conn-2', 'conn-3']) t.same(await sup.startChild(h.spec(id, 'temporary', 2000, { stop: together(id) })), { ok: true })
    await sup.stop()
    t.same(asked, ['conn-3', 'conn-2', 'conn-1'], 'asked in reverse start order, without waiting for each other')
    t.same(h.log.slice(4).sort(), ['stop conn-1', 'stop conn-2', 'stop conn-3', 'stop listener'])
    t.equal(h.log.at(-1), 'stop listener', 'the static child is stopped after its dynamic children')
    t.notOk(h.log.some((line) => line.startsWith('kill')), 'nobody was killed')
  })
})

t.test('Supervisor strategies', async (t) => {
  t.test('one_for_one restarts only the child that died', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ flags: { strategy: 'one_for_one' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await events.started('b', 1)
    t.same(h.log.slice(3), ['start b'])
    t.same(sup.whichChildren().map((c) => c.restarts), [0, 1, 0])
    await sup.stop()
  })

  t.test('one_for_all restarts every child', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ flags: { strategy: 'one_for_all' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await events.started('c', 1)
    t.same(h.log.slice(3), ['stop c', 'stop a', 'start a', 'start b', 'start c'])
    await sup.stop()
  })

  t.test('rest_for_one restarts the child and those started after it', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ flags: { strategy: 'rest_for_one' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await events.started('c', 1)
    t.same(h.log.slice(3), ['stop c', 'start b', 'start c'])
    t.same(sup.whichChildren().map((c) => c.restarts), [0, 1, 1])
    await sup.stop()
  })

  t.test('rest_for_one stops the temporary children after the one that died and forgets them', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ flags: { strategy: 'rest_for_one' }, children: [h.spec('listener')], dynamic: { restart: 'temporary' } })
    await sup.start()
    await sup.startChild(h.spec('conn-1', 'temporary'))
    await sup.startChild(h.spec('conn-2', 'temporary'))
    h.crash('listener')
    await events.started('listener', 1)
    t.same(h.log.slice(3).sort(), ['start listener', 'stop conn-1', 'stop conn-2'])
    t.same(sup.whichChildren(), [{ id: 'listener', status: 'running', restarts: 1 }])
    await sup.stop()
  })
})

t.test('Supervisor termination kinds', async (t) => {
  t.test('permanent: restarted after a normal exit and after an error', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ children: [h.spec('p', 'permanent')] })
    await sup.start()
    h.finish('p')
    await events.started('p', 1)
    h.crash('p')
    await events.started('p', 2)
    t.same(h.log, ['start p', 'start p', 'start p'])
    await sup.stop()
  })

  t.test('transient: restarted after an error only', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ children: [h.spec('t', 'transient')] })
    await sup.start()
    h.crash('t')
    await events.started('t', 1)
    t.same(h.log, ['start t', 'start t'])
    const from = events.events.length
    h.finish('t')
    await events.next((e) => e.type === 'child_exited' && e.reason.type === 'normal', from)
    t.same(h.log, ['start t', 'start t'], 'a normal exit is not restarted')
    t.same(sup.whichChildren(), [{ id: 't', status: 'stopped', restarts: 1 }])
    t.same(await sup.restartChild('t'), { ok: true })
    await sup.stop()
  })

  t.test('temporary: never restarted, and forgotten', async (t) => {
    const h = harness()
    const { sup, events } = supervise({ children: [h.spec('x', 'temporary')] })
    await sup.start()
    h.crash('x')
    await events.next((e) => e.type === 'child_exited' && e.id === 'x')
    t.same(h.log, ['start x'])
    t.same(sup.whichChildren(), [])
    await sup.stop()
  })

  t.test('a child that cannot restart counts as another failure', async (t) => {
    const h = harness()
    let failing = false
    const { sup, events, exited } = supervise({ flags: { intensity: 2, periodMs: 10_000 }, children: [h.spec('f', 'permanent', 1000, { failStart: () => failing })] })
    await sup.start()
    failing = true
    h.crash('f')
    // The escalation, or a third restart (one more than the intensity): whichever comes first.
    const restarts = () => events.events.filter((e) => e.type === 'child_restarted' && e.id === 'f').length
    const next = await events.next((e) => e.type === 'escalated' || (e.type === 'child_restarted' && e.id === 'f' && restarts() > 2))
    if (!t.equal(next.type, 'escalated', 'restart intensity: failed starts count, and the third failure escalates')) return sup.kill()
    t.match(await exited, { type: 'error', error: { message: /restart intensity exceeded \(2 in 10000 ms\); last: f: f cannot start/ } })
    t.same(h.log, ['start f', 'fail-start f', 'fail-start f'])
  })
})

t.test('Supervisor restart intensity', async (t) => {
  t.test('escalates past intensity within the period: stops everything and exits with an error', async (t) => {
    const h = harness()
    const { sup, events, exited } = supervise({ flags: { intensity: 2, periodMs: 10_000 }, children: [h.spec('a'), h.spec('b')] })
    await sup.start()
    h.crash('b')
    await events.started('b', 1)
    h.crash('b')
    await events.started('b', 2)
    t.equal(sup.running, true, 'two restarts are within intensity')
    h.crash('b')
    // Whichever comes first: the escalation, or the restart that would break the invariant.
    const third = await events.next((e) => e.type === 'escalated' || (e.type === 'child_started' && e.id === 'b' && e.restarts === 3))
    if (!t.equal(third.type, 'escalated', 'restart intensity: a third restart within the period escalates instead of restarting')) return sup.kill()
    t.match(await exited, { type: 'error', error: { message: /restart intensity exceeded \(2 in 10000 ms\); last: b: b crashed/ } })
    t.same(events.brief().filter((e) => !e.startsWith('child_started')), [
      'child_exited b',
      'child_restarted b',
      'child_exited b',
      'child_restarted b',
      'child_exited b',
      'escalated b',
    ])
    t.same(h.log.slice(-1), ['stop a'], 'the remaining children were stopped')
    t.equal(sup.running, false)
  })

  t.test('forgets restarts older than the period (simulated clock)', async (t) => {
    const clock = new SimulatedClock()
    const h = harness()
    const { sup, events } = supervise({ flags: { intensity: 1, periodMs: 50 }, children: [h.spec('a')], clock })
    await sup.start()
    for (let i = 1; i <= 3; i++) {
      h.crash('a')
      await events.started('a', i)
      clock.increment(51)
    }
    t.equal(sup.running, true, 'one restart per period never exceeds an intensity of 1')
    t.equal(sup.whichChildren()[0]!.restarts, 3)
    h.crash('a')
    await events.started('a', 4)
    h.crash('a')
    const next = await events.next((e) => e.type === 'escalated' || (e.type === 'child_started' && e.id === 'a' && e.restarts === 5))
    if (!t.equal(next.type, 'escalated', 'restart intensity: a second restart within one period escalates')) return sup.kill()
    t.equal(sup.running, false, 'two restarts within one period do')
  })

  t.test('blame "workload": restarted, but never counted toward the intensity', async (t) => {
    const h = harness()
    const { sup, events, exited } = supervise({ flags: { intensity: 1, periodMs: 60_000 }, children: [h.spec('host-0')] })
    await sup.start()
    for (let i = 1; i <= 5; i++) {
      h.crash('host-0', 'workload')
      await events.started('host-0', i)
    }
    t.equal(sup.running, true, 'five deaths blamed on scripts do not stop the supervisor')
    t.same(
      events.events.filter((e) => e.type === 'child_restarted').map((e) => e.type === 'child_restarted' && e.counted),
      [false, false, false, false, false],
    )
    t.match(events.events.find((e) => e.type === 'child_exited'), { reason: { type: 'error', blame: 'workload' } })
    h.crash('host-0')
    await events.started('host-0', 6)
    t.equal(sup.running, true, 'the first infrastructure failure is within intensity 1')
    h.crash('host-0')
    const next = await events.next((e) => e.type === 'escalated' || (e.type === 'child_started' && e.id === 'host-0' && e.restarts === 7))
    if (!t.equal(next.type, 'escalated', 'restart intensity: the second counted failure escalates')) return sup.kill()
    t.match(await exited, { type: 'error', error: { message: /restart intensity exceeded \(1 in 60000 ms\); last: host-0/ } })
  })

  t.test('nests: a child supervisor that escalates is restarted by its parent', async (t) => {
    const h = harness()
    const inside = recorder()
    const { sup: parent, events } = supervise({
      children: [
        {
          id: 'inner',
          type: 'supervisor',
          restart: 'permanent',
          shutdown: 1000,
          start: async () => {
            const inner = new Supervisor({ id: 'inner', flags: { intensity: 0, periodMs: 1000 }, children: [h.spec('leaf')], onEvent: inside.onEvent })
            await inner.start()
            return inner
          },
        },
      ],
    })
    await parent.start()
    h.crash('leaf')
    // The parent's restart of inner, or inner restarting its leaf (past its intensity of 0).
    const first = await Promise.race([events.started('inner', 1).then(() => 'inner restarted'), inside.next((e) => e.type === 'child_restarted').then(() => 'leaf restarted')])
    if (!t.equal(first, 'inner restarted', 'restart intensity: inner escalates at its first restart, and its parent restarts it')) return parent.kill()
    t.same(h.log, ['start leaf', 'start leaf'], 'inner gave up at once; the parent started a new inner')
    t.match(events.events.find((e) => e.type === 'child_exited'), { id: 'inner', reason: { type: 'error', error: { message: /inner: restart intensity exceeded/ } } })
    t.same(parent.whichChildren(), [{ id: 'inner', status: 'running', restarts: 1 }])
    await parent.stop()
  })

  t.test('kill() stops every child at once and exits with an error', async (t) => {
    const h = harness()
    const { sup, exited } = supervise({ children: [h.spec('a'), h.spec('b')] })
    await sup.start()
    sup.kill()
    t.same(h.log.slice(2), ['kill b', 'kill a'])
    t.match(await exited, { type: 'error', error: { message: 'supervisor supervisor killed' } })
  })
})

t.test('Supervisor.tree() describes the tree as it runs', async (t) => {
  const h = harness()
  let leaf: ChildHandle | undefined
  const inner = new Supervisor({
    id: 'gateway:x',
    flags: { strategy: 'rest_for_one', intensity: 3, periodMs: 60_000 },
    children: [
      {
        id: 'listener',
        restart: 'permanent',
        shutdown: 100,
        start: () => (leaf = handleFor(async () => {})),
      },
    ],
    dynamic: { restart: 'temporary' },
  })
  const { sup: root, events } = supervise({
    id: 'root',
    flags: { strategy: 'one_for_one', intensity: 3, periodMs: 60_000 },
    children: [
      h.spec('verifier'),
      {
        id: 'gateway:x',
        type: 'supervisor',
        restart: 'permanent',
        shutdown: 1000,
        start: async () => {
          await inner.start()
          return inner
        },
      },
    ],
  })
  t.match(root.tree(), { id: 'root', state: 'idle', children: [{ id: 'verifier', status: 'stopped' }, { id: 'gateway:x', status: 'stopped' }] })
  await root.start()
  for (const id of ['conn-1', 'conn-2']) inner.startChildSync({ id, restart: 'temporary', shutdown: 100, start: () => handleFor(async () => {}) })
  h.crash('verifier')
  await events.started('verifier', 1)
  t.same(root.tree(), {
    id: 'root',
    strategy: 'one_for_one',
    intensity: 3,
    periodMs: 60_000,
    state: 'running',
    children: [
      { type: 'worker', id: 'verifier', restart: 'permanent', status: 'running', restarts: 1 },
      {
        id: 'gateway:x',
        strategy: 'rest_for_one',
        intensity: 3,
        periodMs: 60_000,
        state: 'running',
        children: [{ type: 'worker', id: 'listener', restart: 'permanent', status: 'running', restarts: 0 }],
        dynamic: { count: 2, restart: 'temporary' },
        type: 'supervisor',
        restart: 'permanent',
        status: 'running',
        restarts: 0,
      },
    ],
  })
  t.ok(leaf)
  await root.stop()
  t.match(root.tree(), { state: 'stopped', children: [{ id: 'verifier', status: 'stopped' }, { id: 'gateway:x', status: 'stopped' }] })
})

t.test('Supervisor keeps supervising when its event observer throws', async (t) => {
  // The observer is logs and metrics. One that throws (a broken log destination) once left the
  // restart chain rejected: the exit it was told about and every later one went unhandled, and
  // stop() rejected with the observer's error.
  const h = harness()
  let throws = 1
  const seen: string[] = []
  const sup = new Supervisor({
    children: [h.spec('a'), h.spec('b')],
    onEvent: (event) => {
      seen.push(`${event.type} ${event.id}`)
      if (event.type === 'child_exited' && throws-- > 0) throw new Error('the log destination is gone')
    },
  })
  await sup.start()
  h.crash('a')
  h.crash('b')
  // The restarts are promise work only (these children start at once): one turn of the event
  // loop runs all of it.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(h.log, ['start a', 'start b', 'start a', 'start b'], 'both children restarted')
  await sup.stop()
  t.same(
    seen.filter((e) => !e.startsWith('child_started')),
    ['child_exited a', 'child_restarted a', 'child_exited b', 'child_restarted b'],
    'the observer was told everything, the throw included',
  )
})

t.test('Supervisor fails, rather than stalling, when its own restart work throws', async (t) => {
  // A child handle whose kill() throws, met while a one_for_all restart stops its siblings.
  const h = harness()
  const brittle: ChildSpec = {
    id: 'brittle',
    restart: 'permanent',
    shutdown: 'brutal_kill',
    start: () =>
      handleFor(
        async () => undefined,
        () => {
          throw new Error('kill failed')
        },
      ),
  }
  const { sup, exited } = supervise({ flags: { strategy: 'one_for_all' }, children: [brittle, h.spec('a')] })
  await sup.start()
  h.crash('a')
  const reason = await exited
  t.match(reason, { type: 'error', error: { message: /supervision failed: kill failed/ } })
  t.notOk(sup.running)
})

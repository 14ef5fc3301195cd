import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Supervisor, handleFor, type ChildSpec, type ExitReason, type Restart, type Shutdown } from '../../src/supervisor/index.js'

/** A child that records what happens to it and can be made to exit. */
function harness() {
  const log: string[] = []
  const live = new Map<string, ReturnType<typeof handleFor>>()
  const spec = (id: string, restart: Restart = 'permanent', shutdown: Shutdown = 1000, opts: { stopMs?: number; failStart?: () => boolean } = {}): ChildSpec => ({
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
          if (opts.stopMs) await sleep(opts.stopMs)
          log.push(`stop ${id}`)
        },
        () => log.push(`kill ${id}`),
      )
      live.set(id, handle)
      return handle
    },
  })
  const crash = (id: string) => live.get(id)!.exit({ type: 'error', error: new Error(`${id} crashed`) })
  const finish = (id: string) => live.get(id)!.exit({ type: 'normal' })
  return { log, spec, crash, finish }
}

const settle = () => sleep(20)

t.test('Supervisor start', async (t) => {
  t.test('starts children in order', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    t.same(h.log, ['start a', 'start b', 'start c'])
    t.same(sup.whichChildren().map((c) => c.status), ['running', 'running', 'running'])
    await sup.stop()
  })

  t.test('stops the children already started when one fails to start, and throws', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('a'), h.spec('b'), h.spec('c', 'permanent', 1000, { failStart: () => true })] })
    await t.rejects(sup.start(), /c cannot start/)
    t.same(h.log, ['start a', 'start b', 'fail-start c', 'stop b', 'stop a'])
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
  })

  t.test('checks its options', async (t) => {
    t.throws(() => new Supervisor({ flags: { strategy: 'one_for_some' as never } }), { code: 'INVALID_OPTION', message: /flags.strategy/ })
    t.throws(() => new Supervisor({ flags: { intensity: -1 } }), { code: 'INVALID_OPTION', message: /flags.intensity/ })
    const h = harness()
    t.throws(() => new Supervisor({ children: [{ ...h.spec('a'), shutdown: -5 }] }), { code: 'INVALID_OPTION', message: /shutdown/ })
    t.throws(() => new Supervisor({ children: [h.spec('a'), h.spec('a')] }), { code: 'INVALID_OPTION', message: /duplicate/ })
  })
})

t.test('Supervisor stop', async (t) => {
  t.test('stops children in reverse order and exits normally', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    const exits: ExitReason[] = []
    sup.onExit((r) => exits.push(r))
    await sup.start()
    await sup.stop()
    t.same(h.log.slice(3), ['stop c', 'stop b', 'stop a'])
    t.same(exits, [{ type: 'normal' }])
  })

  t.test('kills a child that does not stop within its shutdown time', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('slow', 'permanent', 30, { stopMs: 500 })] })
    await sup.start()
    await sup.stop()
    t.same(h.log, ['start slow', 'kill slow'])
  })

  t.test('kills a brutal_kill child without asking it to stop', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('b', 'permanent', 'brutal_kill')] })
    await sup.start()
    await sup.stop()
    t.same(h.log, ['start b', 'kill b'])
  })
})

t.test('Supervisor strategies', async (t) => {
  t.test('one_for_one restarts only the child that died', async (t) => {
    const h = harness()
    const sup = new Supervisor({ flags: { strategy: 'one_for_one' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await settle()
    t.same(h.log.slice(3), ['start b'])
    t.same(sup.whichChildren().map((c) => c.restarts), [0, 1, 0])
    await sup.stop()
  })

  t.test('one_for_all restarts every child', async (t) => {
    const h = harness()
    const sup = new Supervisor({ flags: { strategy: 'one_for_all' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await settle()
    t.same(h.log.slice(3), ['stop c', 'stop a', 'start a', 'start b', 'start c'])
    await sup.stop()
  })

  t.test('rest_for_one restarts the child and those started after it', async (t) => {
    const h = harness()
    const sup = new Supervisor({ flags: { strategy: 'rest_for_one' }, children: [h.spec('a'), h.spec('b'), h.spec('c')] })
    await sup.start()
    h.crash('b')
    await settle()
    t.same(h.log.slice(3), ['stop c', 'start b', 'start c'])
    await sup.stop()
  })
})

t.test('Supervisor termination kinds', async (t) => {
  t.test('permanent: restarted after a normal exit and after an error', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('p', 'permanent')] })
    await sup.start()
    h.finish('p')
    await settle()
    h.crash('p')
    await settle()
    t.same(h.log, ['start p', 'start p', 'start p'])
    await sup.stop()
  })

  t.test('transient: restarted after an error only', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('t', 'transient')] })
    await sup.start()
    h.crash('t')
    await settle()
    t.same(h.log, ['start t', 'start t'])
    h.finish('t')
    await settle()
    t.same(h.log, ['start t', 'start t'])
    t.same(sup.whichChildren(), [{ id: 't', status: 'stopped', restarts: 1 }])
    t.same(await sup.restartChild('t'), { ok: true })
    await sup.stop()
  })

  t.test('temporary: never restarted, and forgotten', async (t) => {
    const h = harness()
    const sup = new Supervisor({ children: [h.spec('x', 'temporary')] })
    await sup.start()
    h.crash('x')
    await settle()
    t.same(h.log, ['start x'])
    t.same(sup.whichChildren(), [])
    await sup.stop()
  })

  t.test('a child that cannot restart counts as another failure', async (t) => {
    const h = harness()
    let failing = false
    const sup = new Supervisor({ flags: { intensity: 2, periodMs: 10_000 }, children: [h.spec('f', 'permanent', 1000, { failStart: () => failing })] })
    const exits: ExitReason[] = []
    sup.onExit((r) => exits.push(r))
    await sup.start()
    failing = true
    h.crash('f')
    await settle()
    t.match(exits, [{ type: 'error', error: { message: /restart intensity exceeded/ } }])
  })
})

t.test('Supervisor restart intensity', async (t) => {
  t.test('escalates past intensity within the period: stops everything and exits with an error', async (t) => {
    const h = harness()
    const events: string[] = []
    const sup = new Supervisor({
      flags: { intensity: 2, periodMs: 10_000 },
      children: [h.spec('a'), h.spec('b')],
      onEvent: (e) => {
        if (e.type === 'child_restarted' || e.type === 'escalated') events.push(`${e.type} ${e.id}`)
      },
    })
    const exits: ExitReason[] = []
    sup.onExit((r) => exits.push(r))
    await sup.start()
    h.crash('b')
    await settle()
    h.crash('b')
    await settle()
    t.same(exits, [], 'two restarts are within intensity')
    h.crash('b')
    await settle()
    t.same(events, ['child_restarted b', 'child_restarted b', 'escalated b'])
    t.match(exits, [{ type: 'error', error: { message: /restart intensity exceeded \(2 in 10000 ms\); last: b: b crashed/ } }])
    t.same(h.log.slice(-1), ['stop a'], 'the remaining children were stopped')
  })

  t.test('forgets restarts older than the period', async (t) => {
    const h = harness()
    const sup = new Supervisor({ flags: { intensity: 1, periodMs: 50 }, children: [h.spec('a')] })
    const exits: ExitReason[] = []
    sup.onExit((r) => exits.push(r))
    await sup.start()
    for (let i = 0; i < 3; i++) {
      h.crash('a')
      await sleep(80)
    }
    t.same(exits, [])
    t.equal(sup.whichChildren()[0]!.restarts, 3)
    await sup.stop()
  })

  t.test('nests: a child supervisor that escalates is restarted by its parent', async (t) => {
    const h = harness()
    const parent = new Supervisor({
      children: [
        {
          id: 'inner',
          restart: 'permanent',
          shutdown: 1000,
          start: async () => {
            const inner = new Supervisor({ flags: { intensity: 0, periodMs: 1000 }, children: [h.spec('leaf')] })
            await inner.start()
            return inner
          },
        },
      ],
    })
    await parent.start()
    h.crash('leaf')
    await settle()
    t.same(h.log, ['start leaf', 'start leaf'], 'inner gave up at once; the parent started a new inner')
    t.same(parent.whichChildren(), [{ id: 'inner', status: 'running', restarts: 1 }])
    await parent.stop()
  })
})

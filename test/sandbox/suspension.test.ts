/**
 * Runs suspended on calls, at the engine that holds them: each slice sees its own run's engine
 * state whatever ran in between, and an abort by one run does not take the others' context with
 * it unless it must (the isolate itself, or past the bound on retired contexts).
 */
import t from 'tap'
import { DEFAULTS } from '../../src/config/index.js'
import { WriteLedger } from '../../src/live/index.js'
import { Engine, type RunContext, type RunStore, type Slice } from '../../src/sandbox/engine.js'

const OPTIONS = { memoryMb: 64, maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES, maxLogBytes: DEFAULTS.MAX_LOG_BYTES, maxLogLines: DEFAULTS.MAX_LOG_LINES }
const CALLER = '02'.padEnd(66, 'c')
const EFFECTS = { maxEmits: DEFAULTS.EMITS_PER_RUN, maxEmitBytes: DEFAULTS.EMIT_BYTES_PER_RUN, maxNotifyValueBytes: DEFAULTS.NOTIFY_VALUE_BYTES }

/** An in-memory namespace that records what was written to it. */
function store(): RunStore & { docs: Map<string, string> } {
  const docs = new Map<string, string>()
  return {
    docs,
    read: (name) => docs.get(String(name)) ?? null,
    write: (name, text) => void docs.set(String(name), text),
    remove: (name) => docs.delete(String(name)),
    list: () => [...docs.keys()],
  }
}

function context(circle: string, namespace = store()): RunContext & { store: ReturnType<typeof store> } {
  return { circle, dbPathLabel: circle, store: namespace, cpuMs: 5_000, maxCallsInFlight: 16, maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES, effects: EFFECTS, ledger: new WriteLedger() }
}

/** Seeds that repeat: every engine built with them draws the same per-run seeds in the same order. */
function repeatable(): (into: Uint32Array) => void {
  let next = 1
  return (into) => {
    for (let i = 0; i < into.length; i++) into[i] = Math.imul(next++, 2654435761) >>> 0
  }
}

const request = (script: string, timeoutMs = 5_000) => ({ script, caller: CALLER, canWrite: true, canCall: true, timeoutMs })
const OK = { code: null, message: '', body: '"output":"","result":null,"logs":[]' }

function value(slice: Slice | undefined): unknown {
  if (slice?.type !== 'done') throw new Error(`not done: ${JSON.stringify(slice)}`)
  if (slice.outcome.code !== null) throw new Error(`${slice.outcome.code}: ${slice.outcome.message}`)
  return JSON.parse(`{${slice.outcome.body}}`).result
}

/**
 * A run that draws, registers a symbol and saves, then waits on a call, then does it all again
 * and reports what it saw.
 */
const WORKFLOW = `(async () => {
  const first = [Math.random(), Math.random()]
  const mine = Symbol.for('mine')
  for (let i = 0; i < 5000; i++) Symbol.for(CIRCLE_PUBLIC_KEY.slice(0, 4) + i)
  save_data('step', 1)
  await call('${CALLER}', '1')
  let room = 'room'
  try { for (let i = 0; i < 4999; i++) Symbol.for('more ' + i) } catch (e) { room = e.name }
  save_data('step', 2)
  return [first, [Math.random(), Math.random()], Symbol.for('mine') === mine, room]
})()`

t.test('interleaved, each run sees exactly what it would see alone', async (t) => {
  const a = context('02'.padEnd(66, 'a'))
  const b = context('02'.padEnd(66, 'b'))
  // Alone: A, then B, each from its start to its end (the same seeds, in the same order).
  const alone = new Engine({ ...OPTIONS, seeds: repeatable() })
  t.teardown(() => alone.dispose())
  t.match(alone.start(1, request(WORKFLOW), a), { type: 'suspended', calls: [{ id: 1, peer: CALLER, script: '1', timeoutMs: 0 }] })
  const aloneA = value(alone.resume(1, 1, OK))
  t.match(alone.start(2, request(WORKFLOW), b), { type: 'suspended' })
  const aloneB = value(alone.resume(2, 1, OK))

  // Interleaved: A starts, B starts, B resumes and ends, then A.
  const together = new Engine({ ...OPTIONS, seeds: repeatable() })
  t.teardown(() => together.dispose())
  const a2 = context(a.circle)
  const b2 = context(b.circle)
  t.match(together.start(1, request(WORKFLOW), a2), { type: 'suspended' })
  t.match(together.start(2, request(WORKFLOW), b2), { type: 'suspended' })
  t.equal(together.waiting, 2, 'two runs suspended in one context')
  const togetherB = value(together.resume(2, 1, OK))
  const togetherA = value(together.resume(1, 1, OK))

  t.same(togetherA, aloneA, 'A drew the same numbers, kept its symbols and had the same room')
  t.same(togetherB, aloneB, 'so did B')
  t.match(togetherA, [[Number, Number], [Number, Number], true, 'room'], 'each registry held only its own run’s 5,001 symbols, room for 4,999 more')
  t.not((togetherA as number[][])[1]![0], (togetherB as number[][])[1]![0], 'the runs drew different streams')
  t.same([a2.store.docs.get('step'), b2.store.docs.get('step')], ['2', '2'], 'each run’s saves went to its own namespace, before and after')
  t.equal(together.waiting, 0)
})

t.test('a run that times out while others wait retires their context instead of rebuilding it', async (t) => {
  const engine = new Engine({ ...OPTIONS, maxRetiredContexts: 1 })
  t.teardown(() => engine.dispose())
  const waitOnce = `(async () => { const mine = Symbol.for('x'); await call('${CALLER}', '1'); return Symbol.for('x') === mine })()`
  t.match(engine.start(1, request(waitOnce), context('02'.padEnd(66, '1'))), { type: 'suspended' })
  const rebuilds = engine.rebuilds
  t.match(engine.start(2, request('while (true) {}', 20), context('02'.padEnd(66, '2'))), { type: 'done', outcome: { code: 'SCRIPT_TIMEOUT' } })
  t.equal(engine.rebuilds, rebuilds + 1, 'new runs get a fresh context')
  t.match(engine.start(3, request(waitOnce), context('02'.padEnd(66, '3'))), { type: 'suspended' }, 'and may wait in it')
  t.equal(value(engine.resume(1, 1, OK)), true, 'the run waiting in the retired context finishes there')
  t.same(engine.takeInterrupted(), [])

  t.test('past the bound on retired contexts the oldest goes, and the runs waiting in it are interrupted', async (t) => {
    t.match(engine.start(4, request(waitOnce), context('02'.padEnd(66, '4'))), { type: 'suspended' })
    // Run 3 waits in the current context; the timeout retires it. Run 4 waits there too.
    t.match(engine.start(5, request('while (true) {}', 20), context('02'.padEnd(66, '5'))), { type: 'done', outcome: { code: 'SCRIPT_TIMEOUT' } })
    t.match(engine.start(6, request(waitOnce), context('02'.padEnd(66, '6'))), { type: 'suspended' })
    t.match(engine.start(7, request('while (true) {}', 20), context('02'.padEnd(66, '7'))), { type: 'done', outcome: { code: 'SCRIPT_TIMEOUT' } })
    t.match(engine.takeInterrupted(), [[3, { code: 'RUN_INTERRUPTED' }], [4, { code: 'RUN_INTERRUPTED' }]], 'two retired contexts for a bound of one: the older one’s runs')
    t.equal(engine.resume(3, 1, OK), undefined, 'an interrupted run is gone')
    t.equal(value(engine.resume(6, 1, OK)), true, 'the run in the context kept finishes')
  })
})

t.test('a memory abort takes every suspended run of the isolate with it', async (t) => {
  const engine = new Engine({ ...OPTIONS, memoryMb: 16 })
  t.teardown(() => engine.dispose())
  t.match(engine.start(1, request(`(async () => { print('waited'); await call('${CALLER}', '1'); return 1 })()`), context('02'.padEnd(66, 'a'))), { type: 'suspended' })
  t.match(engine.start(2, request('const a = []; while (true) a.push(new Array(100000).fill(1))', 30_000), context('02'.padEnd(66, 'b'))), { type: 'done', outcome: { code: 'SCRIPT_MEMORY' } })
  t.match(engine.takeInterrupted(), [[1, { code: 'RUN_INTERRUPTED', message: /was waiting on a call/ }]])
  t.equal(engine.waiting, 0)
  t.equal(value(engine.start(3, request('6 * 7'), context('02'.padEnd(66, 'c')))), 42, 'the next run gets a fresh isolate')
})

t.test('a suspended run’s time and CPU go on counting across its slices', async (t) => {
  const engine = new Engine(OPTIONS)
  t.teardown(() => engine.dispose())
  t.match(engine.start(1, request(`(async () => { print('before'); await call('${CALLER}', '1') })()`, 5_000), context('02'.padEnd(66, 'a'))), { type: 'suspended' })
  t.match(engine.expire(1), { type: 'done', outcome: { code: 'SCRIPT_TIMEOUT', message: 'The script ran past its time limit (5000 ms)', body: '"logs":["before"]' } }, 'expired while waiting: its lines are kept')
  t.equal(engine.expire(1), undefined)
  // Work measured in CPU, not wall-clock time (a loaded machine stretches the wall clock, never
  // the CPU a loop needs): how many loop turns this isolate runs per CPU millisecond.
  const loop = (turns: number) => `{ let x = 0; for (let i = 0; i < ${turns}; i++) x = (x + i * 7) % 1000003 }`
  const calibration = engine.start(3, request(`${loop(2_000_000)}; 1`), context('02'.padEnd(66, 'c')))
  const cpuMs = calibration.type === 'done' ? calibration.outcome.cpuMs : Number.NaN
  t.ok(cpuMs > 0, `the calibration run used CPU (${cpuMs} ms)`)
  const turnsPerMs = 2_000_000 / cpuMs
  // 8 ms of CPU before the call, 80 ms after it, against a limit of 40: under it in the first slice,
  // over it only when the slices are added up.
  const busy = `(async () => { ${loop(Math.round(8 * turnsPerMs))}; await call('${CALLER}', '1'); ${loop(Math.round(80 * turnsPerMs))} })()`
  const ctx = { ...context('02'.padEnd(66, 'b')), cpuMs: 40 }
  const first = engine.start(2, request(busy), ctx)
  t.match(first, { type: 'suspended' }, 'about 8 ms of CPU: under the limit of 40')
  t.match(engine.resume(2, 1, OK), { type: 'done', outcome: { code: 'SCRIPT_TIMEOUT', message: /CPU time limit \(40 ms\)/ } }, '8 ms + 80 ms of CPU is over 40')
})

t.test('a run’s effects: every slice’s, in order, once, with its outcome however it ends', async (t) => {
  const engine = new Engine({ ...OPTIONS, memoryMb: 16 })
  t.teardown(() => engine.dispose())
  const effects = (slice: Slice | undefined) => (slice?.type === 'done' ? slice.outcome.effects : undefined)
  const saveCallSave = `(async () => { save_data('a', 1); emit('t', 'mid'); await call('${CALLER}', '1'); save_data('a', 2); delete_data('a') })()`

  const ctx = context('02'.padEnd(66, 'a'))
  const first = engine.start(1, request(saveCallSave), ctx)
  t.match(first, { type: 'suspended' })
  t.notOk('outcome' in first, 'a suspended slice reports nothing yet')
  t.same(effects(engine.resume(1, 1, OK)), {
    lost: false,
    list: [
      { kind: 'save', name: 'a', value: '1' },
      { kind: 'emit', topic: 't', value: '"mid"' },
      { kind: 'save', name: 'a', value: '2' },
      { kind: 'delete', name: 'a' },
    ],
  })

  t.match(engine.start(2, request(saveCallSave), context('02'.padEnd(66, 'b'))), { type: 'suspended' })
  t.same(effects(engine.expire(2)), { lost: false, list: [{ kind: 'save', name: 'a', value: '1' }, { kind: 'emit', topic: 't', value: '"mid"' }] }, 'timed out while waiting: what it did before')

  t.match(engine.start(3, request(saveCallSave), context('02'.padEnd(66, 'c'))), { type: 'suspended' })
  t.match(engine.start(4, request('const a = []; while (true) a.push(new Array(100000).fill(1))', 30_000), context('02'.padEnd(66, 'd'))), { type: 'done', outcome: { code: 'SCRIPT_MEMORY' } })
  const [interrupted] = engine.takeInterrupted()
  t.match(interrupted, [3, { code: 'RUN_INTERRUPTED', effects: { lost: false, list: [{ kind: 'save', name: 'a', value: '1' }, { kind: 'emit', topic: 't' }] } }], 'interrupted: its writes are on disk, and reported')

  t.equal(effects(engine.start(5, request('save_data("b", 1); 2'), ctx))?.list.length, 1)
  t.equal(effects(engine.start(6, request('3'), ctx)), undefined, 'a run that changed nothing reports nothing, whatever ran before it')
})

t.test('interleaved runs of one context: a write that another, already reported write superseded is left out', async (t) => {
  const engine = new Engine(OPTIONS)
  t.teardown(() => engine.dispose())
  // One RunContext for every run of the context, as the worker gives them.
  const ctx = context('02'.padEnd(66, 'e'))
  const list = (slice: Slice | undefined) => (slice?.type === 'done' ? slice.outcome.effects?.list.map((e) => (e.kind === 'emit' ? `emit ${e.topic}` : `${e.kind} ${e.name} ${e.kind === 'save' ? e.value : ''}`.trim())) : slice)

  const first = `(async () => { save_data('doc', 'first'); save_data('own', 1); emit('t', 1); await call('${CALLER}', '1'); save_data('later', 1) })()`
  t.match(engine.start(1, request(first), ctx), { type: 'suspended' })
  t.same(list(engine.start(2, request(`save_data('doc', 'second')`), ctx)), ['save doc "second"'], 'another run writes the document while the first waits, and ends first')
  t.same(list(engine.resume(1, 1, OK)), ['save own 1', 'emit t', 'save later 1'], 'the first run’s older write of it is not reported after the newer one')
  t.equal(ctx.store.docs.get('doc'), '"second"', 'what a watcher applying the notices in order ends with')

  const again = `(async () => { save_data('doc', 'third'); await call('${CALLER}', '1'); save_data('doc', 'fifth') })()`
  t.match(engine.start(3, request(again), ctx), { type: 'suspended' })
  t.same(list(engine.start(4, request(`save_data('doc', 'fourth')`), ctx)), ['save doc "fourth"'])
  t.same(list(engine.resume(3, 1, OK)), ['save doc "fifth"'], 'a write made after the other run’s is kept')
  t.equal(ctx.store.docs.get('doc'), '"fifth"')

  t.match(engine.start(5, request(`(async () => { save_data('doc', 'sixth'); await call('${CALLER}', '1') })()`), ctx), { type: 'suspended' })
  t.match(engine.start(6, request(`(async () => { delete_data('doc'); await call('${CALLER}', '1') })()`), ctx), { type: 'suspended' })
  t.same(list(engine.resume(5, 1, OK)), ['save doc "sixth"'], 'the older write ends first: reported, then the newer one')
  t.same(list(engine.resume(6, 1, OK)), ['delete doc'])
  t.same(list(engine.start(7, request(`save_data('doc', 'alone')`), ctx)), ['save doc "alone"'], 'nothing held: a run alone reports all it wrote')

  t.match(engine.start(8, request(`(async () => { save_data('doc', 'eighth'); await call('${CALLER}', '1'); save_data('after', 1) })()`), ctx), { type: 'suspended' })
  t.match(engine.start(9, request(`for (let i = 0; i < 1001; i++) save_data('n' + i, i)`), ctx), { type: 'done', outcome: { effects: { lost: true, list: [] } } }, 'a run past its report bounds: its watchers read again')
  t.same(list(engine.resume(8, 1, OK)), ['save after 1'], 'what the run wrote before that read is not reported after it')
})

/**
 * Script-triggered workflows through a launched node: `call(peer, script)` in a script runs the
 * script in another context as the calling context, and returns (or throws) what a client would
 * read. One sandbox host throughout: callers and callees share its one thread.
 */
import t from 'tap'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { clientOf, OPEN_CALLS, type Answer } from '../helpers/calls.js'
import { launchNode } from '../helpers/launched.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'

const DEPTH_HOPS = 9
const names = ['a', 'b', 'c', 'closed', 'nocall', 'owned', 'slow', 'patient', 'roomy', 'small', ...Array.from({ length: DEPTH_HOPS }, (_, i) => `d${i + 1}`)]
const keys: Record<string, KeyPair> = Object.fromEntries(names.map((name) => [name, generateKeyPair()]))
const K = (name: string) => keys[name]!.publicKey
const ROOMY = { timeout_ms: 30_000, cpu_ms: 30_000 }
const MEMORY_BOMB = 'const a = []; while (true) a.push(new Array(100000).fill(1))'

const node = await launchNode(t, {
  keys,
  circles: names.map((name) => ({
    name,
    port: 0,
    policy: name === 'closed' ? { run: 'owner' } : name === 'nocall' ? { run: 'authenticated', write: 'authenticated' } : name === 'owned' ? { run: 'authenticated' } : OPEN_CALLS,
    ...(name === 'slow' ? { limits: { timeout_ms: 3_000, cpu_ms: 3_000 } } : {}),
    ...(name === 'patient' || name === 'roomy' ? { limits: ROOMY } : {}),
    ...(name === 'small' ? { limits: { ...ROOMY, memory_mb: 16 } } : {}),
  })),
})
t.equal(node.hostPids.length, 1, 'one sandbox host: every caller and callee shares its thread')
const base = node.circles['a']!.url
const client = clientOf(t, base)
const ok = (value: unknown) => ({ ok: true, value })

t.test('a call returns the callee’s value; the callee runs as the calling context, with the chain', async (t) => {
  const answer = await client.play(
    K('a'),
    `print('before');
    (async () => {
      const seen = await call('${K('b')}', "print('in b'); [CALLER_PUBLIC_KEY, CALL_CHAIN, Object.isFrozen(CALL_CHAIN), CIRCLE_PUBLIC_KEY, 6 * 7]")
      print('after')
      return [CALLER_PUBLIC_KEY, CALL_CHAIN, seen]
    })()`,
  )
  t.match(answer, ok([client.key, [client.key], [K('a'), [client.key, K('a')], true, K('b'), 42]]))
  t.same(answer.logs, ['before', 'in b', 'after'], 'the callee’s print lines join the caller’s, where it awaited them')
  t.ok(answer.timings['calls_ms']! > 0 && answer.timings['calls_ms']! <= answer.timings['run_ms']!, `calls_ms ${answer.timings['calls_ms']} is part of run_ms ${answer.timings['run_ms']}`)
  t.equal((await client.play(K('a'), '1')).timings['calls_ms'], 0, 'a run that calls nobody waits 0 ms on calls')

  t.test('the value is decoded as a client reads `result`: a string as is, undefined as null', async (t) => {
    const values = await client.play(K('a'), `Promise.all(['"text"', 'undefined', '({ n: [1, 2] })', '10n ** 20n'].map((s) => call('${K('b')}', s)))`)
    t.match(values, ok(['text', null, { n: [1, 2] }, '100000000000000000000']))
  })
})

t.test('refusals reject the call with the callee’s coded error, which the caller may catch', async (t) => {
  const attempt = (target: string, script: string, options = '') =>
    client.play(K('a'), `call(${JSON.stringify(target)}, ${JSON.stringify(script)}${options}).then((v) => ['ok', v], (e) => [e.code, e.message, e instanceof Error])`)
  t.match(await attempt(K('closed'), '1'), ok(['FORBIDDEN', "The circle's policy does not let this caller run scripts", true]), 'the callee’s run policy judges the calling context')
  t.match(await attempt(K('owned'), 'save_data("x", 1)'), ok(['FORBIDDEN', "save_data: the circle's policy does not let this caller write", true]), 'and so does its write policy')
  t.match(await attempt(generateKeyPair().publicKey, '1'), ok(['UNKNOWN_CIRCLE', /is served here/, true]))
  t.match(await attempt('not a key', '1'), ok(['INVALID_PUBLIC_KEY', String, true]))
  t.match(await attempt(K('b'), 'throw new TypeError("nope")'), ok(['SCRIPT_ERROR', 'TypeError: nope', true]))
  t.match(await attempt(K('b'), 'while (true) {}', ', { timeout_ms: 50 }'), ok(['SCRIPT_TIMEOUT', 'The script ran past its time limit (50 ms)', true]), 'timeout_ms lowers the callee’s limit')
  t.match(await attempt(K('b'), '1', ', { timeout: 50 }'), ok(['INVALID_PARAMS', 'call: the only option is timeout_ms', true]))
  t.match(await client.play(K('a'), 'call(42, "1").catch((e) => e.code)'), ok('INVALID_PARAMS'))

  t.test('uncaught, the callee’s error is the caller’s answer', async (t) => {
    t.match(await client.play(K('a'), `call('${K('closed')}', '1')`), { ok: false, code: 'FORBIDDEN' })
  })
  t.test('a refusal the script never looks at is dropped with the call', async (t) => {
    t.match(await client.play(K('a'), `call('${K('closed')}', '1'); 'fine'`), ok('fine'), 'refused at once')
    t.match(await client.play(K('a'), `(async () => { call('${K('b')}', 'throw 1'); return await call('${K('c')}', '2') })()`), ok(2), 'rejected while the run waited on another call')
  })
})

t.test('a context whose call policy does not admit the client cannot call out', async (t) => {
  const refused = await client.play(K('nocall'), `call('${K('b')}', '1').catch((e) => [e.code, e.message])`)
  t.match(refused, ok(['FORBIDDEN', "call: the circle's policy does not let this caller's scripts call other contexts"]))
  const owner = clientOf(t, base, keys['nocall'])
  t.match(await owner.play(K('nocall'), `call('${K('b')}', 'CALLER_PUBLIC_KEY')`), ok(K('nocall')), 'its owner can')
})

t.test('A → B → A is CALL_CYCLE', async (t) => {
  const answer = await client.play(K('a'), `call('${K('b')}', "call('${K('a')}', '1')").catch((e) => [e.code, e.message])`)
  t.match(answer, ok(['CALL_CYCLE', /is already on this call chain/]))
})

t.test('calls nest 8 deep; the 9th is CALL_DEPTH_EXCEEDED', async (t) => {
  // Each hop calls the next with its own source: d1 → d2 → … → d9.
  const relay = `function hop(rest) {
    if (rest.length === 0) return Promise.resolve(CALL_CHAIN.length - 1)
    return call(rest[0], '(' + hop + ')(' + JSON.stringify(rest.slice(1)) + ')')
  }`
  const chainOf = (n: number) => Array.from({ length: n }, (_, i) => K(`d${i + 1}`))
  const eight = await client.play(K('a'), `${relay}; hop(${JSON.stringify(chainOf(8))})`)
  t.match(eight, ok(8), 'the eighth nested call runs, at depth 8')
  const nine = await client.play(K('a'), `${relay}; hop(${JSON.stringify(chainOf(9))})`)
  t.match(nine, { ok: false, code: 'CALL_DEPTH_EXCEEDED', message: 'call: calls may be nested 8 deep at most' }, 'the ninth is refused, and the refusal climbs the chain')
})

t.test('a caller with 300 ms left caps a callee that would loop for 1 s', async (t) => {
  // `slow` allows 3 s; the loop would end after 1 s and write.
  const answer = await client.play(
    K('a'),
    `const start = Date.now(); while (Date.now() - start < 700) {}
    call('${K('slow')}', 'const s = Date.now(); while (Date.now() - s < 1000) {} save_data("finished", true)')`,
  )
  t.match(answer, { ok: false, code: 'SCRIPT_TIMEOUT', message: 'The script ran past its time limit (1000 ms)' }, 'the caller ran out of time')
  t.match(await client.play(K('slow'), 'load_data("finished")'), ok(null), 'and the callee was stopped with it: it never finished its loop')
})

t.test('a fan-out of 16 calls; the 17th in flight is refused', async (t) => {
  const before = await scrape(node.admin)
  const fan = await client.play(K('a'), `Promise.all(Array.from({ length: 16 }, (_, i) => call('${K('b')}', 'CIRCLE_PUBLIC_KEY.slice(0, 4) + ' + i)))`)
  t.match(fan, ok(Array.from({ length: 16 }, (_, i) => `${K('b').slice(0, 4)}${i}`)))
  const after = await scrape(node.admin)
  t.equal(valueOf(after, 'circles_calls_total', { outcome: 'ok' }) - valueOf(before, 'circles_calls_total', { outcome: 'ok' }), 16, 'metrics count the 16 calls, by outcome')
  const over = await client.play(K('a'), `Promise.allSettled(Array.from({ length: 17 }, () => call('${K('b')}', '1'))).then((r) => r.map((x) => x.status === 'fulfilled' ? 'ok' : x.reason.code))`)
  t.match(over, ok([...Array.from({ length: 16 }, () => 'ok'), 'CALL_BUDGET_EXCEEDED']))
})

t.test('a workflow starts 256 runs at most, however its calls are spread over time', async (t) => {
  // One call at a time, each done before the next: the budget is the workflow's, not the moment's.
  const answer = await client.play(K('patient'), `(async () => {
    for (let i = 0; ; i++) {
      try { await call('${K('b')}', '1') } catch (e) { return [i, e.code, e.message] }
    }
  })()`)
  t.match(answer, ok([255, 'CALL_BUDGET_EXCEEDED', 'call: a workflow may start 256 runs at most']), 'its first run and 255 callees')
  t.match(await client.play(K('patient'), `call('${K('b')}', '"a new workflow"')`), ok('a new workflow'), 'the next play starts a workflow of its own')
})

t.test('50 workflows whose calls cross one another all complete on one host', async (t) => {
  const crossing = (from: string, to: string) =>
    client.playMany(K(from), Array.from({ length: 25 }, (_, i) => `(async () => [${i}, await call('${K(to)}', '[CALLER_PUBLIC_KEY, CIRCLE_PUBLIC_KEY]')])()`))
  const answers = (await Promise.all([crossing('a', 'b'), crossing('b', 'a')])).flat()
  t.equal(answers.length, 50)
  const expected = (from: string, to: string) => Array.from({ length: 25 }, (_, i) => ok([i, [K(from), K(to)]]))
  t.match(answers, [...expected('a', 'b'), ...expected('b', 'a')])
})

t.test('two runs suspended together on one host see none of each other’s state', async (t) => {
  // a's run waits on b's; b's run waits on c's: both are suspended at once, in one isolate.
  const inB = `(async () => {
    const mine = Symbol.for('who')
    for (let i = 0; i < 9999; i++) Symbol.for('b' + i)
    save_data('who', 'b')
    const fromC = await call('${K('c')}', 'CALL_CHAIN.length')
    let room
    try { Symbol.for('one more'); room = 'room' } catch (e) { room = e.name }
    return [Symbol.for('who') === mine, room, load_data('who'), fromC]
  })()`
  const answer = await client.play(
    K('a'),
    `(async () => {
      const mine = Symbol.for('who')
      const names = Array.from({ length: 100 }, (_, i) => Symbol.for('a' + i))
      save_data('who', 'a')
      const fromB = await call('${K('b')}', ${JSON.stringify(inB)})
      let room
      try { for (let i = 0; i < 100; i++) Symbol.for('a more ' + i); room = 'room' } catch (e) { room = e.name }
      return [Symbol.for('who') === mine, names.every((s, i) => Symbol.for('a' + i) === s), room, load_data('who'), fromB]
    })()`,
  )
  // b filled its registry to the 10,000 a run may hold (its own 'who' and 9,999): none of a's
  // 100 were in it, and a, resumed after it, still had room for 100 more. Each resumed run read
  // its own namespace: the storage functions acted for the run whose turn it was.
  t.match(answer, ok([true, true, 'room', 'a', [true, 'RangeError', 'b', 3]]))
})

t.test('a callee’s memory bomb, and the caller’s next play still works', async (t) => {
  t.test('callee in an isolate of its own (another memory limit): the caller catches SCRIPT_MEMORY', async (t) => {
    t.match(await client.play(K('patient'), `call('${K('small')}', ${JSON.stringify(MEMORY_BOMB)}).catch((e) => e.code)`), ok('SCRIPT_MEMORY'))
    t.match(await client.play(K('patient'), '"next"'), ok('next'))
  })
  t.test('callee in the caller’s isolate: the caller’s suspended run goes with it, RUN_INTERRUPTED', async (t) => {
    const answer = await client.play(K('patient'), `call('${K('roomy')}', ${JSON.stringify(MEMORY_BOMB)}).catch((e) => e.code)`)
    t.match(answer, { ok: false, code: 'RUN_INTERRUPTED' })
    t.match(await client.play(K('patient'), '"next"'), ok('next'))
    t.match(await client.play(K('roomy'), '"next"'), ok('next'))
  })
})

t.test('a callee that times out does not take its waiting caller with it', async (t) => {
  const answer = await client.play(K('a'), `call('${K('b')}', 'while (true) {}', { timeout_ms: 30 }).then(() => 'done', (e) => e.code)`)
  t.match(answer, ok('SCRIPT_TIMEOUT'), 'the caller, suspended in the context the timeout retired, ran on')
})

t.test('calls the caller never awaited are not run', async (t) => {
  const answer: Answer = await client.play(K('a'), `for (let i = 0; i < 16; i++) call('${K('b')}', 'save_data("unawaited", true)'); 'returned'`)
  t.match(answer, ok('returned'))
  t.match(await client.play(K('b'), 'load_data("unawaited")'), ok(null))
})

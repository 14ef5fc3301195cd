/**
 * Calls across nodes: two launched nodes joined through a private Redis, a script on one
 * calling contexts the other owns. A cross-node call answers what a local one answers (values,
 * logs, errors, refusals); the chain travels with the call, so cycles, depth and the workflow's
 * budget are judged across the nodes; and a callee's node killed mid-call is taken over.
 */
import t from 'tap'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { OPEN_CALLS } from '../helpers/calls.js'
import { cliBuilt, metric, startCli, type CliNode } from '../helpers/cli-node.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

const SECRET = 'cross-node-calls-test-secret-0123456789'
const ROOMY = { timeout_ms: 30_000, cpu_ms: 30_000 }

if (!cliBuilt()) t.fail('run npm run build first (npm test does)')
const prefix = testPrefix('xcalls')
const { url: redisUrl } = await testRedis(t, prefix)
const dir = t.testdir({
  'front.json': JSON.stringify([
    { name: 'a', port: 0, policy: OPEN_CALLS, limits: ROOMY },
    { name: 'local', port: 0, policy: OPEN_CALLS },
    { name: 'beacon', port: 0, policy: OPEN_CALLS },
    ...['d1', 'd2', 'd3', 'd4'].map((name) => ({ name, port: 0, policy: OPEN_CALLS })),
  ]),
  'owner.json': JSON.stringify([
    { name: 'b', port: 0, policy: OPEN_CALLS },
    { name: 'closed', port: 0, policy: { run: 'owner' } },
    { name: 'owned', port: 0, policy: { run: 'authenticated' } },
    { name: 'work', port: 0, policy: OPEN_CALLS, limits: ROOMY },
    ...['e1', 'e2', 'e3', 'e4'].map((name) => ({ name, port: 0, policy: OPEN_CALLS })),
  ]),
})
// A task waits 20 s for its owner beyond its run's limit: a restarted owner fits in it.
const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0', '--queue-allowance-ms', '20000']
const ownerArgs = ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db-owner'), ...args]
let owner = await startCli(t, ownerArgs, /^serving /)
const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
const circle = (node: CliNode, name: string) => node.events.find((e) => e['circle'] === name) as { url: string; public_key: string }
const K: Record<string, string> = {}
for (const name of ['a', 'local', 'beacon', 'd1', 'd2', 'd3', 'd4']) K[name] = circle(front, name).public_key
for (const name of ['b', 'closed', 'owned', 'work', 'e1', 'e2', 'e3', 'e4']) K[name] = circle(owner, name).public_key
const base = circle(front, 'a').url

const me = generateKeyPair()
const sockets: RawSocket[] = []
t.teardown(() => sockets.forEach((s) => s.close()))
async function socketOn(context: string): Promise<RawSocket> {
  const socket = await openSocket(`${base}${context}`)
  await authenticate(socket, me)
  sockets.push(socket)
  return socket
}
const socket = await socketOn(K['a']!)

/** A play in context a, answered as a test reads it. */
async function play(script: string, params: Record<string, unknown> = {}, on = socket): Promise<{ value?: unknown; code?: string; logs: string[]; timings: Record<string, number> }> {
  const answer = await on.call('play', { script, ...params }, undefined, 90_000)
  if (answer.result !== undefined) return { value: answer.result.result, logs: answer.result.logs, timings: answer.result.timings }
  return { code: answer.error.data.code, logs: answer.error.data.logs, timings: answer.error.data.timings }
}

/** A call from a, settled as `['ok', value]` or `[code, message, is an Error]`. */
const attempt = (target: string, script: string) => `call(${JSON.stringify(target)}, ${JSON.stringify(script)}).then((v) => ['ok', v], (e) => [e.code, e.message, e instanceof Error])`

t.test('a cross-node call answers what a local call answers', async (t) => {
  const callee = "print('in callee'); [CALLER_PUBLIC_KEY, CALL_CHAIN, Object.isFrozen(CALL_CHAIN), 6 * 7]"
  const script = (target: string) => `print('before'); (async () => { const seen = await call('${target}', ${JSON.stringify(callee)}); print('after'); return seen })()`
  const remote = await play(script(K['b']!))
  const local = await play(script(K['local']!))
  t.same(remote.value, [K['a'], [me.publicKey, K['a']], true, 42], 'the callee ran as the calling context, with the chain, on the other node')
  t.same(remote.value, local.value, 'the same value as a local call')
  t.same(remote.logs, ['before', 'in callee', 'after'], 'the callee’s print lines join the caller’s')
  t.same(remote.logs, local.logs, 'as a local call’s do')
  t.ok((await metric(front.admin!, 'circles_cross_node_tasks_sent_total')) >= 1, 'the call went through Redis')
  t.same(Object.keys(remote.timings).sort(), Object.keys(local.timings).sort(), 'the same timings')
  t.ok(remote.timings['calls_ms']! > 0 && remote.timings['calls_ms']! <= remote.timings['run_ms']!, `calls_ms ${remote.timings['calls_ms']} is part of run_ms ${remote.timings['run_ms']}`)

  const values = (target: string) => `Promise.all(['"text"', 'undefined', '({ n: [1, 2] })', '10n ** 20n'].map((s) => call('${target}', s)))`
  t.same((await play(values(K['b']!))).value, ['text', null, { n: [1, 2] }, '100000000000000000000'], 'values decode as a client reads them')
  t.same((await play(values(K['b']!))).value, (await play(values(K['local']!))).value, 'as a local call’s do')

  for (const thrown of ['throw new RangeError("too far")', 'load_data(1)', 'null.x', 'save_data("x", () => 1)']) {
    const [r, l] = [await play(attempt(K['b']!, thrown)), await play(attempt(K['local']!, thrown))]
    t.same(r.value, l.value, `a callee that fails (${thrown}) rejects the call as a local one does: ${JSON.stringify(r.value)}`)
  }
})

t.test('a policy refusal crosses the nodes as FORBIDDEN', async (t) => {
  t.same((await play(attempt(K['closed']!, '1'))).value, ['FORBIDDEN', "The circle's policy does not let this caller run scripts", true], 'the callee’s run rule judges the calling context')
  t.same((await play(attempt(K['owned']!, 'save_data("x", 1)'))).value, ['FORBIDDEN', "save_data: the circle's policy does not let this caller write", true], 'and so does its write rule')
  const uncaught = await play(`call('${K['closed']}', '1')`)
  t.equal(uncaught.code, 'FORBIDDEN', 'uncaught, the refusal is the play’s error')
})

t.test('the chain travels with the call: cycles, depth and the workflow’s budget hold across nodes', async (t) => {
  t.match((await play(attempt(K['b']!, `call('${K['a']}', '1')`))).value, ['CALL_CYCLE', /already on this call chain/, true], 'a → b (other node) → a')
  t.match((await play(attempt(K['b']!, `call('${K['local']}', "call('${K['b']}', '1')")`))).value, ['CALL_CYCLE', /already on this call chain/, true], 'a → b → local (back on the first node) → b')

  // Nested calls alternating between the nodes: a, b, d1, e1, … — 9 contexts on a chain is one too many.
  const hops = ['b', 'd1', 'e1', 'd2', 'e2', 'd3', 'e3', 'd4', 'e4'].map((name) => K[name]!)
  const nest = (targets: readonly string[]) => targets.reduceRight((inner, key) => `call('${key}', ${JSON.stringify(inner)})`, "CALL_CHAIN.length - 1")
  const eight = await play(nest(hops.slice(0, 8)))
  t.same(eight.value ?? eight.code, 8, 'calls 8 deep, across the nodes at every step')
  const deep = await play(nest(hops))
  t.equal(deep.code, 'CALL_DEPTH_EXCEEDED', 'the 9th context on the chain may not call: depth is counted across the nodes')

  // a spends 250 runs on this node, then b (the other node) may start only what is left of 256.
  const spend = `(async () => {
    for (let i = 0; i < 250; i++) await call('${K['local']}', '1')
    return call('${K['b']}', ${JSON.stringify(`(async () => { let n = 0; try { for (let i = 0; i < 20; i++) { await call('${K['e1']}', '1'); n++ } } catch (e) { return [n, e.code] } return [n, null] })()`)})
  })()`
  t.same((await play(spend)).value, [4, 'CALL_BUDGET_EXCEEDED'], 'the budget left rides with the call: 1 + 250 + 1 runs spent on the first node, 4 left on the second')
})

t.test('50 workflows crossing between the two nodes all complete', async (t) => {
  const n = 50
  // Each counts into a document of its own in the context where it ends, and crosses twice:
  // even ones start in a (first node): a → b (second) → d1 (first);
  // odd ones start in b, through the first node's gateway: b → d1 (first) → e1 (second).
  const count = (i: number) => `'const n = (load_data("w${i}") ?? 0) + 1; save_data("w${i}", n); [${i}, n, CALL_CHAIN.length]'`
  const script = (i: number) =>
    i % 2 === 0 ? `call('${K['b']}', ${JSON.stringify(`call('${K['d1']}', ${count(i)})`)})` : `call('${K['d1']}', ${JSON.stringify(`call('${K['e1']}', ${count(i)})`)})`
  const viaGateway = await socketOn(K['b']!)
  const ids = Array.from({ length: n }, (_, i) => i)
  const answers = await Promise.all(ids.map((i) => play(script(i), {}, i % 2 === 0 ? socket : viaGateway)))
  t.same(
    answers.map((a) => a.value ?? a.code),
    ids.map((i) => [i, 1, 3]),
    'every workflow answered with its value, each run once',
  )
})

t.test('kill -9 of the callee’s node mid-call: taken over, the caller gets the answer; not taken over, a coded error', async (t) => {
  // The callee tells beacon (on the caller's node) it has started — beacon counts — and on its
  // first run never ends: only the kill ends it. Run again after the takeover, it answers.
  const watch = await socketOn(K['beacon']!)
  t.equal((await watch.call('subscribe', {})).error, undefined, 'watching beacon')
  /** Beacon's count reached `n`: the callee's run number n has started. */
  const started = async (n: number) => {
    for (;;) if ((await watch.next(60_000)).params?.value === n) return
  }
  const callee = `(async () => { const n = await call('${K['beacon']}', 'const n = (load_data("n") ?? 0) + 1; save_data("n", n); n'); if (n === 1) while (true) {} ; return ['done', n] })()`
  const answered = play(`call('${K['work']}', ${JSON.stringify(callee)})`)
  await started(1)
  await owner.kill9()
  owner = await startCli(t, ownerArgs, /^serving /)
  const answer = await answered
  t.same(answer.value, ['done', 2], 'the caller got the answer of the run after the takeover')
  t.ok((await metric(owner.admin!, 'circles_cross_node_tasks_redelivered_total')) >= 1, 'the restarted owner re-delivered the call')

  // Again, and no node takes over: the caller (a 4 s run) is answered with a coded error.
  const cut = play(`call('${K['work']}', ${JSON.stringify(callee.replace('n === 1', 'n === 3'))})`, { timeout_ms: 4_000 })
  await started(3)
  await owner.kill9()
  const error = await cut
  t.ok(error.code === 'TASK_EXPIRED' || error.code === 'SCRIPT_TIMEOUT', `the caller is answered with a coded error: ${error.code}`)
})

/**
 * The call part of a cross-node task: how it is encoded and MAC'd, every refusal of readCall
 * (QUEUE_MESSAGE_INVALID with its reason), and callThrough's translation of a bridge's answers
 * and failures into the outcome the call router expects.
 */
import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { circlesError } from '../../src/errors/index.js'
import { MAX_TASK_CHAIN, callMacFields, callThrough, calleePlay, encodeCall, readCall, type CallGateway, type TaskCall } from '../../src/queue/remote-calls.js'

const CLIENT = generateKeyPair().publicKey
const A = generateKeyPair().publicKey
const B = generateKeyPair().publicKey

t.test('encodeCall / callMacFields / readCall round trip', async (t) => {
  const call: TaskCall = { chain: [CLIENT, A, B], chainId: 'task-1', runsLeft: 17 }
  t.same(encodeCall(call), [[CLIENT, A, B], 'task-1', 17])
  t.same(callMacFields(call), [JSON.stringify([CLIENT, A, B]), 'task-1', 17])
  t.same(readCall(JSON.parse(JSON.stringify(encodeCall(call))), B, 't'), call)
  t.same(readCall([['', A], 'w', 0], A, 't'), { chain: ['', A], chainId: 'w', runsLeft: 0 }, 'an anonymous client starts the chain with ""')
  t.same(calleePlay(call, 12345), { chain: [CLIENT, A, B], chainId: 'task-1', deadline: 12345 })
})

t.test('readCall refusals name the reason and the task', async (t) => {
  const long = [CLIENT, ...Array.from({ length: MAX_TASK_CHAIN }, () => A)]
  const cases: [unknown, string, string][] = [
    [null, A, 'a call of the wrong shape'],
    [[[CLIENT, A], 'w'], A, 'a call of the wrong shape'],
    [[[CLIENT, A], 'w', 1, 2], A, 'a call of the wrong shape'],
    [[[A], 'w', 1], A, 'a call with a malformed chain'],
    [['x', 'w', 1], A, 'a call with a malformed chain'],
    [[long, 'w', 1], A, 'a call with a malformed chain'],
    [[['not a key', A], 'w', 1], A, 'a call chain that does not start with a client key'],
    [[[CLIENT, 'not a key', A], 'w', 1], A, 'a call chain with a key that is not a public key'],
    [[[CLIENT, A.toUpperCase()], 'w', 1], A.toUpperCase(), 'a call chain with a key that is not a public key'],
    [[[CLIENT, A], 'w', 1], B, 'a call whose caller does not end its chain'],
    [[['', A], 'w', 1], '', 'a call whose caller does not end its chain'],
    [[[CLIENT, A], '', 1], A, 'a call with a malformed chain id'],
    [[[CLIENT, A], 'x'.repeat(65), 1], A, 'a call with a malformed chain id'],
    [[[CLIENT, A], 7, 1], A, 'a call with a malformed chain id'],
    [[[CLIENT, A], 'w', -1], A, 'a call with a bad run budget'],
    [[[CLIENT, A], 'w', 1.5], A, 'a call with a bad run budget'],
    [[[CLIENT, A], 'w', 2 ** 31], A, 'a call with a bad run budget'],
    [[[CLIENT, A], 'w', '3'], A, 'a call with a bad run budget'],
  ]
  for (const [value, caller, reason] of cases) {
    t.throws(() => readCall(value, caller, 'task-9'), { code: 'QUEUE_MESSAGE_INVALID', message: `A message read from Redis was refused: ${reason}`, details: { reason, task_id: 'task-9' } }, reason)
  }
  t.equal(readCall([[CLIENT, ...Array.from({ length: MAX_TASK_CHAIN - 1 }, () => A)], 'x'.repeat(64), 2 ** 31 - 1], A, 't').chain.length, MAX_TASK_CHAIN, 'the longest chain, id and budget allowed')
})

const OUTCOME = { code: undefined, message: 'done', runMs: 1, cpuMs: 1, callsMs: 0 }

function gateway(answer: (pubkey: string, request: unknown, call: unknown) => Promise<unknown>): CallGateway & { seen: unknown[] } {
  const seen: unknown[] = []
  return {
    seen,
    dispatch: (pubkey, request, call) => {
      seen.push([pubkey, request, call])
      return answer(pubkey, request, call) as ReturnType<CallGateway['dispatch']>
    },
  }
}

t.test('callThrough sends the play and the call part, and resolves with the callee outcome', async (t) => {
  const bridge = gateway(async () => ({ taskId: 't', queuedMs: 0, outcome: OUTCOME }))
  const outcome = await callThrough(bridge, B, { caller: A, script: 'return 1', chain: [CLIENT, A], chainId: 'w', deadline: 99, origin: '203.0.113.1', timeoutMs: 50, runsLeft: 4 })
  t.same(outcome, OUTCOME)
  t.same(bridge.seen, [[B, { caller: A, script: 'return 1', deadline: 99, origin: '203.0.113.1', timeoutMs: 50 }, { chain: [CLIENT, A], chainId: 'w', runsLeft: 4 }]])
  await callThrough(bridge, B, { caller: A, script: 's', chain: [CLIENT, A], chainId: 'w', deadline: 1 })
  t.same(bridge.seen[1], [B, { caller: A, script: 's', deadline: 1 }, { chain: [CLIENT, A], chainId: 'w', runsLeft: 0 }], 'no origin or timeout when absent; runsLeft 0 by default')
})

t.test('callThrough: refusals become failed runs; a cancelled call is not sent', async (t) => {
  const refusing = gateway(async () => {
    throw circlesError('UNAVAILABLE', 'the owner is gone')
  })
  t.match(await callThrough(refusing, B, { caller: A, script: 's', chain: [CLIENT, A], chainId: 'w', deadline: 1 }), { code: 'UNAVAILABLE', message: 'the owner is gone', runMs: 0 })
  const broken = gateway(async () => {
    throw new TypeError('secret detail')
  })
  t.match(await callThrough(broken, B, { caller: A, script: 's', chain: [CLIENT, A], chainId: 'w', deadline: 1 }), { code: 'INTERNAL_ERROR', message: 'call: the call could not be sent to its owner' })
  const unused = gateway(async () => t.fail('a cancelled call is sent'))
  t.match(await callThrough(unused, B, { caller: A, script: 's', chain: [CLIENT, A], chainId: 'w', deadline: 1, signal: AbortSignal.abort() }), { code: 'CALL_CANCELLED' })
  t.same(unused.seen, [])
})

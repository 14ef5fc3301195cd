/**
 * readFrame, checkResult and checkInfo: how the client reads what a node sends — every entry of
 * a frame classified, and each method's result checked against its documented shape, with the
 * MALFORMED_ANSWER naming what is wrong.
 */
import t from 'tap'
import { checkInfo, checkResult, readFrame } from '../../src/client/answers.js'
import { MalformedAnswerError, RpcError } from '../../src/client/errors.js'

t.test('readFrame: results, errors and notifications', async (t) => {
  t.same(readFrame('{"jsonrpc":"2.0","id":1,"result":{"a":1}}'), [{ type: 'result', id: 1, result: { a: 1 } }])
  t.same(readFrame('{"jsonrpc":"2.0","id":"x","result":null}'), [{ type: 'result', id: 'x', result: null }], 'a null result is a result')
  t.same(readFrame('{"jsonrpc":"2.0","method":"update","params":[1]}'), [{ type: 'notification', method: 'update', params: [1] }])
  const [error] = readFrame('{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"bad","data":{"code":"INVALID_PARAMS","field":"script"}}}')
  t.equal(error?.type, 'error')
  if (error?.type === 'error') {
    t.equal(error.id, 2)
    t.type(error.error, RpcError)
    t.match(error.error, { code: 'INVALID_PARAMS', rpcCode: -32602, message: 'bad', data: { code: 'INVALID_PARAMS', field: 'script' } })
  }
})

t.test('readFrame: a batch is read entry by entry', async (t) => {
  const answers = readFrame('[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"1.0","id":2,"result":2},{"jsonrpc":"2.0","id":3,"result":3,"error":{}}]')
  t.equal(answers.length, 3)
  t.same(answers[0], { type: 'result', id: 1, result: 1 })
  t.same(answers[1], { type: 'garbage', what: 'not a JSON-RPC 2.0 response object' })
  t.equal(answers[2]?.type, 'error')
  if (answers[2]?.type === 'error') {
    t.equal(answers[2].id, 3, 'the id is kept, so the request can be failed')
    t.type(answers[2].error, MalformedAnswerError)
    t.equal(answers[2].error.message, 'malformed answer from the node: a response needs exactly one of "result" and "error"')
  }
})

t.test('readFrame: garbage is said to be garbage, never thrown', async (t) => {
  t.same(readFrame('not json'), [{ type: 'garbage', what: 'a frame that is not JSON' }])
  t.same(readFrame('[]'), [{ type: 'garbage', what: 'an empty batch' }])
  t.same(readFrame('null'), [{ type: 'garbage', what: 'not a JSON-RPC 2.0 response object' }])
  t.same(readFrame('"x"'), [{ type: 'garbage', what: 'not a JSON-RPC 2.0 response object' }])
  t.same(readFrame('{"jsonrpc":"2.0","result":1}'), [{ type: 'garbage', what: 'a response without "id"' }])
  t.same(readFrame('{"jsonrpc":"2.0","method":7}'), [{ type: 'garbage', what: 'a response without "id"' }])
  t.same(readFrame('{"jsonrpc":"2.0","id":1}').map((a) => a.type), ['error'], 'neither result nor error')
})

t.test('readFrame: an error object must carry an integer code, a message and data.code', async (t) => {
  const cases: [string, string][] = [
    ['"nope"', '"error" is not an object'],
    ['{"code":1.5,"message":"m","data":{"code":"X"}}', '"error.code" is not an integer'],
    ['{"code":"1","message":"m","data":{"code":"X"}}', '"error.code" is not an integer'],
    ['{"code":1,"message":2,"data":{"code":"X"}}', '"error.message" is not a string'],
    ['{"code":1,"message":"m"}', '"error.data.code" is not a string'],
    ['{"code":1,"message":"m","data":{"code":5}}', '"error.data.code" is not a string'],
  ]
  for (const [error, what] of cases) {
    const [answer] = readFrame(`{"jsonrpc":"2.0","id":9,"error":${error}}`)
    t.equal(answer?.type === 'error' && answer.error instanceof MalformedAnswerError && answer.error.message, `malformed answer from the node: ${what}`, error)
  }
})

const PLAY = { output: '1', result: 1, logs: ['a'], task_id: 't1', timings: { queued_ms: 0, run_ms: 1.5, cpu_ms: 1 } }

t.test('checkResult: each method result against its shape', async (t) => {
  t.same(checkResult('fetch_nonce', { nonce: 'text', expires_at: 5 }), { nonce: 'text', expires_at: 5 })
  t.same(checkResult('authenticate', { authenticated: true }), { authenticated: true })
  t.same(checkResult('play', PLAY), PLAY)
  const full = { ...PLAY, logs_truncated: true, timings: { ...PLAY.timings, calls_ms: 3 } }
  t.same(checkResult('play', full), full, 'with the optional members')
  const noResult = { output: 'text', logs: [], task_id: 't', timings: { queued_ms: 0, run_ms: 0, cpu_ms: 0 } }
  t.same(checkResult('play', noResult), noResult, 'without result (a string value)')
  t.same(checkResult('subscribe', { subscription: 's1', epoch: 'ab', seq: 0 }), { subscription: 's1', epoch: 'ab', seq: 0 })
  t.same(checkResult('unsubscribe', { unsubscribed: false }), { unsubscribed: false })
})

t.test('checkResult: what is wrong is named', async (t) => {
  const cases: [Parameters<typeof checkResult>[0], unknown, string][] = [
    ['fetch_nonce', null, 'fetch_nonce: "result" is not an object'],
    ['fetch_nonce', [], 'fetch_nonce: "result" is not an object'],
    ['fetch_nonce', { nonce: '', expires_at: 5 }, 'fetch_nonce: "nonce" is not a non-empty string'],
    ['fetch_nonce', { nonce: 'x', expires_at: '5' }, 'fetch_nonce: "expires_at" is not a number'],
    ['authenticate', { authenticated: 'yes' }, 'authenticate: "authenticated" is not true'],
    ['play', { ...PLAY, output: 1 }, 'play: "output" is not a string'],
    ['play', { ...PLAY, logs: [1] }, 'play: "logs" is not an array of strings'],
    ['play', { ...PLAY, logs_truncated: 'no' }, 'play: "logs_truncated" is not a boolean'],
    ['play', { ...PLAY, task_id: 3 }, 'play: "task_id" is not a string'],
    ['play', { ...PLAY, timings: { queued_ms: 0, run_ms: 1 } }, 'play: "timings" needs numbers queued_ms, run_ms and cpu_ms'],
    ['play', { ...PLAY, timings: { ...PLAY.timings, calls_ms: 'x' } }, 'play: "timings.calls_ms" is not a number'],
    ['subscribe', { subscription: 1, epoch: 'a', seq: 0 }, 'subscribe: "subscription" is not a string'],
    ['subscribe', { subscription: 's', epoch: 'a', seq: 0.5 }, 'subscribe: "epoch" and "seq" are not a position'],
    ['unsubscribe', { unsubscribed: 1 }, 'unsubscribe: "unsubscribed" is not a boolean'],
  ]
  for (const [method, value, message] of cases) {
    const r = checkResult(method, value)
    t.equal(r instanceof MalformedAnswerError && r.message, `malformed answer from the node: ${message}`, message)
  }
})

t.test('checkInfo: the GET /info body', async (t) => {
  const info = { name: 'alice', public_key: '02ab', version: '0.1.0', methods: ['play'], policy: { run: 'anyone' }, limits: { max_script_bytes: 10 }, extra: true }
  t.same(checkInfo(info), info)
  const cases: [unknown, string][] = [
    [[], 'info: not a JSON object'],
    [{ ...info, name: 1 }, 'info: "name" is not a string'],
    [{ ...info, public_key: null }, 'info: "public_key" is not a string'],
    [{ ...info, version: 1 }, 'info: "version" is not a string'],
    [{ ...info, methods: 'play' }, 'info: "methods" is not an array of strings'],
    [{ ...info, policy: [] }, 'info: "policy" is not an object'],
    [{ ...info, limits: { a: '1' } }, 'info: "limits" is not an object of numbers'],
  ]
  for (const [value, message] of cases) {
    const r = checkInfo(value)
    t.equal(r instanceof MalformedAnswerError && r.message, `malformed answer from the node: ${message}`, message)
  }
})

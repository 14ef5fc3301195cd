/**
 * Findings 1, 2 and 8 of the security review, over real sockets: answers are bounded in UTF-8
 * bytes as sent, a batch's answers share a byte budget charged in request order, a failing
 * authenticate inside a batch is answered as an array, and a fault on the answer path is
 * answered INTERNAL_ERROR with a correlation id that is also in the node's log.
 */
import t from 'tap'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'
import { DEFAULTS } from '../../src/config/index.js'
import { openSocket, authenticate } from '../helpers/raw-socket.js'
import { captureLog } from '../helpers/log-capture.js'
import { startNode } from '../helpers/node.js'

/** The value of the `logs` member of an answer as sent (the array, brackets included), in UTF-8 bytes. */
function logsBytes(text: string): number {
  const match = /"logs":(\[.*?\])(?=,"(?:logs_truncated|task_id)")/s.exec(text)
  if (match === null) throw new Error(`no logs member in ${text.slice(0, 200)}`)
  return Buffer.byteLength(match[1]!)
}

t.test('output and log limits bound UTF-8 bytes as sent', async (t) => {
  const { node, url } = await startNode(t, { policy: { run: 'anonymous' } })
  const socket = await openSocket(url)
  t.teardown(() => socket.close())

  t.test("'€'.repeat(524000) (1.5 MB as UTF-8, 524,000 UTF-16 units) is over the 1 MiB output limit", async (t) => {
    const answer = await socket.call('play', { script: "'€'.repeat(524000)" })
    t.match(answer.error, { code: -32013, data: { code: 'OUTPUT_TOO_LARGE' } })
    socket.send({ jsonrpc: '2.0', id: 'fits', method: 'play', params: { script: "'€'.repeat(340000)" } })
    const text = await socket.nextText(10_000)
    const parsed = JSON.parse(text)
    t.equal(parsed.result.output.length, 340_000, '1,020,000 bytes of output fit under 1 MiB')
    t.notOk('result' in parsed.result, 'a string result is sent once (output), not twice')
    t.ok(Buffer.byteLength(text) < DEFAULTS.MAX_OUTPUT_BYTES + 1024, `the answer is ${Buffer.byteLength(text)} bytes`)
  })

  t.test('a value whose JSON is under the limit in UTF-16 but over it in bytes is refused', async (t) => {
    const answer = await socket.call('play', { script: "({ a: '€'.repeat(200000), b: '€'.repeat(200000) })" })
    t.match(answer.error, { data: { code: 'OUTPUT_TOO_LARGE' } }, 'output (JSON text) and result together are 2.4 MB')
  })

  t.test('65,536 × print("\\u0001") keeps the logs within 64 KiB as sent (escaping counted)', async (t) => {
    // The default line cap (1,000) would stop this first: lift it to reach the byte bound.
    await node.peers.spawnPeer({ pubkey: node.served[0]!.publicKey, limits: { maxLogLines: 1_000_000 } })
    socket.send({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: 'for (let i = 0; i < 65536; i++) print("\\u0001"); 1' } })
    const text = await socket.nextText(10_000)
    const answer = JSON.parse(text)
    t.equal(answer.result.logs_truncated, true)
    const bytes = logsBytes(text)
    t.ok(bytes <= DEFAULTS.MAX_LOG_BYTES, `logs member is ${bytes} bytes`)
    t.ok(bytes > DEFAULTS.MAX_LOG_BYTES - 16, 'and filled up to the bound')
    t.equal(answer.result.logs.length, Math.floor((DEFAULTS.MAX_LOG_BYTES - 2 + 1) / 9), 'each line costs "\\u0001" (8 bytes) and a comma')
  })

  t.test('print() with no arguments is not free: bounded in bytes and in lines', async (t) => {
    socket.send({ jsonrpc: '2.0', id: 2, method: 'play', params: { script: 'for (let i = 0; i < 3e5; i++) print(); 1' } })
    const text = await socket.nextText(10_000)
    const answer = JSON.parse(text)
    t.equal(answer.result.logs_truncated, true)
    t.ok(logsBytes(text) <= DEFAULTS.MAX_LOG_BYTES)
    t.equal(answer.result.logs.length, Math.floor((DEFAULTS.MAX_LOG_BYTES - 2 + 1) / 3), 'each empty line costs "" and a comma')
    await node.peers.spawnPeer({ pubkey: node.served[0]!.publicKey, limits: { maxLogLines: DEFAULTS.MAX_LOG_LINES } })
    const capped = await socket.call('play', { script: 'for (let i = 0; i < 3e5; i++) print(); 1' })
    t.equal(capped.result.logs.length, DEFAULTS.MAX_LOG_LINES, 'the default line cap')
    t.equal(capped.result.logs_truncated, true)
  })

  t.test('an error answer carries its logs within the same bound', async (t) => {
    const answer = await socket.call('play', { script: 'for (let i = 0; i < 1e5; i++) print("€€€€"); throw new Error("after printing")' })
    t.match(answer.error, { data: { code: 'SCRIPT_ERROR', logs_truncated: true } })
    t.ok(Buffer.byteLength(JSON.stringify(answer.error.data.logs)) <= DEFAULTS.MAX_LOG_BYTES)
  })
})

t.test('a batch whose answers pass the batch budget is answered in full to a client that reads', async (t) => {
  const { url, node } = await startNode(t, { policy: { run: 'anonymous' } })
  const socket = await openSocket(url)
  t.teardown(() => socket.close())
  // 20 answers of ~1 MB: over the 16 MiB socket buffer the whole array would have been cut (1006).
  socket.send(Array.from({ length: 20 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '"x".repeat(1000000)' } })))
  const text = await socket.nextText(60_000)
  const budget = Math.min(DEFAULTS.MAX_BATCH_ANSWER_BYTES, DEFAULTS.MAX_BUFFERED_BYTES / 2)
  t.ok(Buffer.byteLength(text) <= budget, `${Buffer.byteLength(text)} bytes, within the ${budget}-byte budget`)
  const answers = JSON.parse(text) as { id: number; result?: { output: string }; error?: { data: { code: string; limit: number } } }[]
  t.same(answers.map((a) => a.id), Array.from({ length: 20 }, (_, i) => i), 'one answer per entry, in request order')
  const full = answers.findIndex((a) => a.error !== undefined)
  t.ok(full >= 1, `${full} answered in full`)
  const used = 2 + answers.slice(0, full).reduce((n, a) => n + Buffer.byteLength(JSON.stringify(a)) + 1, 0)
  t.ok(used + 1_000_000 > budget, 'as many as fit: one more would not have')
  t.ok(answers.slice(0, full).every((a) => a.result?.output.length === 1_000_000), 'those before it whole')
  t.ok(answers.slice(full).every((a) => a.error?.data.code === 'OUTPUT_TOO_LARGE' && a.error.data.limit === budget), 'those past it OUTPUT_TOO_LARGE')
  t.match(await socket.call('play', { script: '"still open"' }), { result: { output: 'still open' } }, 'the socket was not cut')

  t.test('charged in request order: a later small answer still fits after a refused large one', async (t) => {
    const small = await startNode(t, { policy: { run: 'anonymous' }, gateway: { maxBatchAnswerBytes: 1_000_000 } })
    const s = await openSocket(small.url)
    s.send([
      { jsonrpc: '2.0', id: 'a', method: 'play', params: { script: '"a".repeat(600000)' } },
      { jsonrpc: '2.0', id: 'b', method: 'play', params: { script: '"b".repeat(600000)' } },
      { jsonrpc: '2.0', id: 'c', method: 'play', params: { script: '"c"' } },
      { jsonrpc: '2.0', id: 'd', method: 'fetch_nonce', params: { pubkey: generateKeyPair().publicKey } },
    ])
    const batch = (await s.next(20_000)) as { id: string; result?: { output?: string; nonce?: string }; error?: { data: { code: string } } }[]
    t.same(
      batch.map((a) => [a.id, a.error?.data.code ?? 'ok']),
      [
        ['a', 'ok'],
        ['b', 'OUTPUT_TOO_LARGE'],
        ['c', 'ok'],
        ['d', 'ok'],
      ],
    )
    s.close()
  })
  void node
})

t.test('a failing authenticate inside a batch: the batch is answered as an array, then the socket closes 1008', { timeout: 10_000 }, async (t) => {
  // A circle that admits anonymous callers, so that the entries around the failing one succeed.
  const { url } = await startNode(t, { policy: { run: 'anonymous' } })
  const alice = generateKeyPair()
  const socket = await openSocket(url)
  const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
  socket.send([
    { jsonrpc: '2.0', id: 1, method: 'play', params: { script: '"before"' } },
    { jsonrpc: '2.0', id: 2, method: 'authenticate', params: { pubkey: alice.publicKey, signature: signPersonalMessage(result.nonce, generateKeyPair().secretKey) } },
    { jsonrpc: '2.0', id: 3, method: 'play', params: { script: '[CALLER_PUBLIC_KEY, "after"]' } },
  ])
  const answer = await socket.next()
  t.ok(Array.isArray(answer), 'an array, as JSON-RPC answers a batch')
  t.same(
    answer.map((a: { id: number; result?: { output: string }; error?: { data: { code: string } } }) => [a.id, a.error?.data.code ?? a.result!.output]),
    [
      [1, 'before'],
      [2, 'INVALID_CREDENTIALS'],
      [3, '["","after"]'],
    ],
    'the entries around the failed authenticate are answered too (the last one as anonymous)',
  )
  t.same(await socket.closed, { code: 1008, reason: 'INVALID_CREDENTIALS' })
})

t.test('a thrown error on the answer path is INTERNAL_ERROR with a correlation id, logged with the same id', async (t) => {
  const log = captureLog()
  const { url, circle } = await startNode(t, { faults: ['answer-throw'], logger: log.logger })
  const socket = await openSocket(url)
  await authenticate(socket, circle)
  const answer = await socket.call('play', { script: '"FAULT_ANSWER_THROW"' }, 'faulty')
  t.match(answer, { id: 'faulty', error: { code: -32603, message: 'Internal error', data: { code: 'INTERNAL_ERROR', correlation_id: /^[0-9a-f]{16}$/ } } })
  const id = answer.error.data.correlation_id as string
  const line = await log.waitFor((l) => l['correlation_id'] === id)
  t.match(line, { level: 50, msg: 'internal error answering a request', err: { message: 'fault injected: answer-throw' } })
  t.notMatch(JSON.stringify(answer), /fault injected|at |\/work\//, 'nothing about the fault is disclosed')
  socket.send([
    { jsonrpc: '2.0', id: 'x', method: 'play', params: { script: '"FAULT_ANSWER_THROW"' } },
    { jsonrpc: '2.0', id: 'y', method: 'play', params: { script: '"fine"' } },
  ])
  const batch = await socket.next()
  t.match(batch, [{ id: 'x', error: { data: { code: 'INTERNAL_ERROR', correlation_id: String } } }, { id: 'y', result: { output: 'fine' } }], 'in a batch too, the others answered')
  t.match(await socket.call('play', { script: '"serving"' }), { result: { output: 'serving' } })
  socket.close()
})

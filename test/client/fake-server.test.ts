import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { CirclesClient, ConnectionClosedError, MalformedAnswerError, RpcError, type ClientState } from '../../src/client/index.js'

interface Request {
  readonly id: number
  readonly method: string
  readonly params: Record<string, unknown>
}

/** A WebSocket server that answers as `answer` says: the tests play a misbehaving node. */
async function fakeNode(
  t: { teardown(fn: () => unknown): void },
  answer: (request: Request, socket: WebSocket) => void,
): Promise<{ url: string; server: WebSocketServer; received: Request[] }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(server, 'listening')
  const received: Request[] = []
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const request = JSON.parse(data.toString()) as Request
      received.push(request)
      answer(request, socket)
    })
  })
  t.teardown(() => new Promise((resolve) => {
    for (const client of server.clients) client.terminate()
    server.close(resolve)
  }))
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, server, received }
}

const PLAY_OK = { output: '1', result: 1, logs: [], task_id: 't', timings: { queued_ms: 0, run_ms: 0, cpu_ms: 0 } }
const reply = (socket: WebSocket, value: unknown) => socket.send(typeof value === 'string' ? value : JSON.stringify(value))

async function client(t: { teardown(fn: () => unknown): void }, url: string, reconnect = false): Promise<CirclesClient> {
  const builder = CirclesClient.builder(url).withTimeout(5_000)
  const c = (reconnect ? builder.withReconnect({ initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 20 }) : builder).build()
  t.teardown(() => c.close())
  await c.connect()
  return c
}

t.test('a malformed answer is a typed error, never a crash', async (t) => {
  t.test('a result without the documented shape fails that request only', async (t) => {
    const { url } = await fakeNode(t, (r, socket) => {
      const script = r.params['script']
      if (script === 'bad') reply(socket, { jsonrpc: '2.0', id: r.id, result: { output: 5 } })
      else if (script === 'worse') reply(socket, { jsonrpc: '2.0', id: r.id, result: 'a string' })
      else if (script === 'timings') reply(socket, { jsonrpc: '2.0', id: r.id, result: { ...PLAY_OK, timings: { queued_ms: 'soon' } } })
      else reply(socket, { jsonrpc: '2.0', id: r.id, result: PLAY_OK })
    })
    const c = await client(t, url)
    for (const [script, what] of [['bad', /"output" is not a string/], ['worse', /"result" is not an object/], ['timings', /"timings"/]] as const) {
      const error = await c.play(script).catch((e: unknown) => e)
      t.ok(error instanceof MalformedAnswerError, script)
      t.match(error, { code: 'MALFORMED_ANSWER', data: { code: 'MALFORMED_ANSWER' }, message: what })
    }
    t.same(await c.play('fine'), PLAY_OK, 'the connection goes on')
  })

  t.test('an error object without data.code, or with both result and error', async (t) => {
    const { url } = await fakeNode(t, (r, socket) => {
      if (r.params['script'] === 'nocode') reply(socket, { jsonrpc: '2.0', id: r.id, error: { code: -32000, message: 'x' } })
      else if (r.params['script'] === 'both') reply(socket, { jsonrpc: '2.0', id: r.id, result: PLAY_OK, error: { code: 1, message: 'x', data: { code: 'X' } } })
      else reply(socket, { jsonrpc: '2.0', id: r.id, error: { code: -32006, message: 'no', data: { code: 'FORBIDDEN', extra: 1 } } })
    })
    const c = await client(t, url)
    await t.rejects(c.play('nocode'), { code: 'MALFORMED_ANSWER', message: /data\.code/ })
    await t.rejects(c.play('both'), { code: 'MALFORMED_ANSWER', message: /exactly one/ })
    const error = await c.play('forbidden').catch((e: unknown) => e)
    t.ok(error instanceof RpcError)
    t.match(error, { code: 'FORBIDDEN', rpcCode: -32006, data: { code: 'FORBIDDEN', extra: 1 } })
  })

  t.test('a frame that is not JSON fails every request in flight and closes the connection (1002)', async (t) => {
    let closed: Promise<[number, Buffer]> | undefined
    const { url } = await fakeNode(t, (r, socket) => {
      closed ??= once(socket, 'close') as Promise<[number, Buffer]>
      if (r.params['script'] === 'trigger') reply(socket, '{"jsonrpc": "2.0", "id": ')
    })
    const c = await client(t, url)
    const waiting = c.play('waits')
    const error = await c.play('trigger').catch((e: unknown) => e)
    t.ok(error instanceof MalformedAnswerError)
    t.match(error, { code: 'MALFORMED_ANSWER', message: /not JSON/ })
    await t.rejects(waiting, { code: 'MALFORMED_ANSWER' }, 'the other request in flight fails too')
    t.equal((await closed!)[0], 1002)
  })

  t.test('a binary frame, and garbage in a batch, are malformed too', async (t) => {
    const { url } = await fakeNode(t, (r, socket) => {
      if (r.params['script'] === 'binary') socket.send(Buffer.from('{}'))
      else reply(socket, [{ jsonrpc: '2.0', id: r.id, result: PLAY_OK }, 42])
    })
    await t.rejects((await client(t, url)).play('binary'), { code: 'MALFORMED_ANSWER', message: /binary/ })
    await t.rejects((await client(t, url)).play('batch'), { code: 'MALFORMED_ANSWER', message: /JSON-RPC 2\.0 response/ })
  })

  t.test('answers for ids never sent (or already given up) are dropped', async (t) => {
    const { url } = await fakeNode(t, (r, socket) => {
      reply(socket, { jsonrpc: '2.0', id: 999_999, result: PLAY_OK })
      reply(socket, { jsonrpc: '2.0', id: 'text', result: PLAY_OK })
      reply(socket, { jsonrpc: '2.0', id: r.id, result: { ...PLAY_OK, output: 'mine' } })
    })
    const c = await client(t, url)
    t.equal((await c.play('x')).output, 'mine')
  })

  t.test('an aborted signal sends nothing', async (t) => {
    const { url, received } = await fakeNode(t, (r, socket) => reply(socket, { jsonrpc: '2.0', id: r.id, result: PLAY_OK }))
    const c = await client(t, url)
    await t.rejects(c.play('never', { signal: AbortSignal.abort() }), { code: 'ABORTED' })
    await c.play('sent')
    t.same(received.map((r) => r.params['script']), ['sent'])
  })
})

t.test('reconnecting: requests in flight fail with a clear error and are never sent again', async (t) => {
  let connections = 0
  const { url, received } = await fakeNode(t, (r, socket) => {
    // The first connection dies while its play runs; later ones answer.
    if (connections === 1) socket.terminate()
    else reply(socket, { jsonrpc: '2.0', id: r.id, result: { ...PLAY_OK, output: String(r.params['script']) } })
  })
  const c = CirclesClient.builder(url).withReconnect({ initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 20 }).build()
  t.teardown(() => c.close())
  const states: ClientState[] = []
  c.onStateChange((state) => states.push(state))
  await c.connect()
  connections = 1
  const error = await c.play('may have run').catch((e: unknown) => e)
  t.ok(error instanceof ConnectionClosedError)
  t.match(error, { code: 'CONNECTION_CLOSED', closeCode: 1006, message: /may have run on the node and is not sent again/ })
  connections = 2
  t.equal(c.state, 'reconnecting')
  t.equal((await c.play('after')).output, 'after', 'a request made while reconnecting waits and goes through')
  t.same(received.map((r) => r.params['script']), ['may have run', 'after'], 'the lost play was not sent again')
  t.same(states, ['connecting', 'open', 'reconnecting', 'open'])
})

t.test('reconnecting gives up after maxAttempts: waiting requests fail CONNECTION_CLOSED', async (t) => {
  const { url, server } = await fakeNode(t, (r, socket) => reply(socket, { jsonrpc: '2.0', id: r.id, result: PLAY_OK }))
  const c = CirclesClient.builder(url).withReconnect({ initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 }).build()
  t.teardown(() => c.close())
  await c.connect()
  const reconnecting = new Promise<void>((resolve) => c.onStateChange((s) => s === 'reconnecting' && resolve()))
  const closed = new Promise<void>((resolve) => c.onStateChange((s) => s === 'closed' && resolve()))
  await new Promise((resolve) => {
    for (const socket of server.clients) socket.terminate()
    server.close(resolve)
  })
  await reconnecting
  const waiting = c.play('waits')
  await t.rejects(waiting, { code: 'CONNECTION_CLOSED', message: /3 reconnect attempt\(s\) failed/ })
  await closed
  t.equal(c.state, 'closed')
})

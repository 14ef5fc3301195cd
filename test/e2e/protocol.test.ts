import t from 'tap'
import { WebSocket } from 'ws'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '../../src/identity/index.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { captureLog } from '../helpers/log-capture.js'
import { startNode } from '../helpers/node.js'

t.test('JSON-RPC 2.0 over the socket', async (t) => {
  const { circle, url } = await startNode(t, { gateway: { maxFrameBytes: 4096, maxInFlight: 4, maxBatchEntries: 10 } })

  t.test('answers a parse error with id null and keeps serving', async (t) => {
    const socket = await openSocket(url)
    socket.send('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    t.same(await socket.next(), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the frame is not valid JSON', data: { code: 'PARSE_ERROR' } } })
    t.match(await socket.call('fetch_nonce', { pubkey: circle.publicKey }, 'after'), { id: 'after', result: { nonce: String } })
    socket.close()
  })

  t.test('answers a mixed batch entry by entry, in order, skipping notifications', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, circle)
    socket.send([
      { jsonrpc: '2.0', method: 'play', params: { script: '1 + 2' }, id: '1' },
      { jsonrpc: '2.0', method: 'notify_hello', params: [7] },
      { jsonrpc: '2.0', method: 'play', params: { script: 'save_data("notified", true)' } },
      { foo: 'boo' },
      { jsonrpc: '2.0', method: 'foo.get', params: { name: 'myself' }, id: '5' },
      { jsonrpc: '2.0', method: 'play', params: { script: 'load_data("notified")' }, id: '9' },
    ])
    const answers = await socket.next()
    t.same(
      answers.map((a: { id: unknown; result?: { output: string }; error?: { code: number } }) => [a.id, a.result?.output ?? a.error?.code]),
      [
        ['1', '3'],
        [null, -32600],
        ['5', -32601],
        ['9', 'true'],
      ],
      'the notification ran (in order) but got no answer',
    )
    socket.close()
  })

  t.test('sends nothing at all for an all-notification batch', async (t) => {
    const socket = await openSocket(url)
    socket.send([{ jsonrpc: '2.0', method: 'notify_sum', params: [1, 2, 4] }, { jsonrpc: '2.0', method: 'notify_hello', params: [7] }])
    socket.send({ jsonrpc: '2.0', method: 'fetch_nonce', params: { pubkey: circle.publicKey } })
    const next = await socket.call('fetch_nonce', { pubkey: circle.publicKey }, 'marker')
    t.equal(next.id, 'marker', 'the first message after the notifications is the marker answer')
    socket.close()
  })

  t.test('answers an empty batch and [1,2,3] as the specification says', async (t) => {
    const socket = await openSocket(url)
    socket.send('[]')
    t.same(await socket.next(), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: empty batch', data: { code: 'INVALID_REQUEST' } } })
    socket.send('[1,2,3]')
    const answers = await socket.next()
    t.equal(answers.length, 3)
    t.ok(answers.every((a: { id: unknown; error: { code: number } }) => a.id === null && a.error.code === -32600))
    socket.close()
  })

  t.test('refuses binary frames with INVALID_REQUEST', async (t) => {
    const socket = await openSocket(url)
    socket.ws.send(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1"}}'), { binary: true })
    t.match(await socket.next(), { id: null, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } })
    socket.close()
  })

  t.test('closes with 1009 on a frame over the size limit; the node serves others', async (t) => {
    const bystander = await openSocket(url)
    const socket = await openSocket(url)
    socket.send({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: 'x'.repeat(10_000) } })
    t.equal((await socket.closed).code, 1009)
    t.match(await bystander.call('fetch_nonce', { pubkey: circle.publicKey }), { result: { nonce: String } })
    bystander.close()
  })

  t.test('answers BATCH_TOO_LARGE past the batch limit', async (t) => {
    const socket = await openSocket(url)
    socket.send(Array.from({ length: 11 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'fetch_nonce', params: { pubkey: circle.publicKey } })))
    t.match(await socket.next(), { id: null, error: { code: -32600, data: { code: 'BATCH_TOO_LARGE', limit: 10 } } })
    socket.close()
  })

  t.test('answers TOO_MANY_IN_FLIGHT past the per-socket bound', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, circle)
    for (let i = 0; i < 6; i++) {
      socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: 'const e = Date.now() + 100; while (Date.now() < e) {} 1' } })
    }
    const answers = await Promise.all(Array.from({ length: 6 }, () => socket.next()))
    const refused = answers.filter((a) => a.error?.data?.code === 'TOO_MANY_IN_FLIGHT')
    t.equal(refused.length, 2, 'four in flight were accepted, two refused')
    t.same(refused.map((a) => a.id).sort(), [4, 5])
    socket.close()
  })

  t.test('answers OVERLOADED, with a code, when a context mailbox is full', async (t) => {
    const { node, circle: owner, url: u } = await startNode(t)
    await node.peers.spawnPeer({ pubkey: owner.publicKey, mailboxCapacity: 2, limits: { timeoutMs: 2000, cpuMs: 2000 } })
    const socket = await openSocket(u)
    await authenticate(socket, owner)
    for (let i = 0; i < 4; i++) {
      socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: 'const e = Date.now() + 100; while (Date.now() < e) {} 1' } })
    }
    const answers = await Promise.all(Array.from({ length: 4 }, () => socket.next()))
    t.equal(answers.filter((a) => a.error?.data?.code === 'OVERLOADED').length, 2)
    t.match(answers.find((a) => a.error)?.error, { code: -32030, data: { code: 'OVERLOADED', limit: 2 } })
    socket.close()
  })

  t.test('script errors carry their code, message and logs', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, circle)
    const answer = await socket.call('play', { script: 'print("about to fail"); throw new TypeError("nope")' })
    t.match(answer.error, { code: -32010, message: 'TypeError: nope', data: { code: 'SCRIPT_ERROR', logs: ['about to fail'], task_id: String } })
    const timeout = await socket.call('play', { script: 'while (true) {}', timeout_ms: 50 })
    t.match(timeout.error, { code: -32011, data: { code: 'SCRIPT_TIMEOUT' } })
    socket.close()
  })
})

t.test('hostile frames', async (t) => {
  const { circle, url } = await startNode(t)

  t.test('a deeply nested frame is refused before it is parsed, and the node serves on', async (t) => {
    const socket = await openSocket(url)
    socket.send('['.repeat(500_000) + ']'.repeat(500_000))
    t.same(await socket.next(), {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'The frame nests arrays and objects deeper than 32 levels: refused before parsing', data: { code: 'FRAME_TOO_COMPLEX', limit: 32, shape: 'depth' } },
    })
    // Unterminated: JSON.parse would call it a PARSE_ERROR; the scan refuses it first.
    socket.send('{"a":' + '['.repeat(33))
    t.match(await socket.next(), { error: { data: { code: 'FRAME_TOO_COMPLEX', shape: 'depth' } } })
    socket.send(JSON.stringify(Object.fromEntries(Array.from({ length: 6_000 }, (_, i) => [`k${i}`, i]))))
    t.match(await socket.next(), { error: { data: { code: 'FRAME_TOO_COMPLEX', limit: 10_000, shape: 'values' } } }, 'a wide object: too many values')
    t.match(await socket.call('fetch_nonce', { pubkey: circle.publicKey }, 'after'), { id: 'after', result: { nonce: String } })
    socket.close()
  })

  t.test('a client that never reads its answers is cut (SLOW_CONSUMER), others are served', async (t) => {
    const log = captureLog()
    const { circle: owner, url: u, admin } = await startNode(t, { gateway: { maxBufferedBytes: 1_048_576 }, logger: log.logger })
    const socket = await openSocket(u)
    await authenticate(socket, owner)
    socket.pauseReading()
    for (let i = 0; i < 80; i++) {
      socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '"x".repeat(300000)' } })
    }
    const bystander = await openSocket(u)
    await authenticate(bystander, owner)
    await log.waitFor((line) => /SLOW_CONSUMER/.test(line.msg))
    const text = await fetch(`${admin}/metrics`).then((r) => r.text())
    t.match(text, /circles_errors_total\{code="SLOW_CONSUMER"\} 1\n/, 'the slow consumer was cut, once')
    t.match(await bystander.call('play', { script: '"fine"' }), { result: { output: 'fine' } })
    bystander.close()
  })
})

t.test('idle connections are closed (1001, IDLE_TIMEOUT)', async (t) => {
  const { url } = await startNode(t, { gateway: { idleTimeoutMs: 150 } })
  const socket = await openSocket(url)
  const started = performance.now()
  t.same(await socket.closed, { code: 1001, reason: 'IDLE_TIMEOUT' })
  t.ok(performance.now() - started >= 140)
})

t.test('HTTP endpoints', async (t) => {
  const { circle, http, admin } = await startNode(t)

  t.test('GET /info describes the circle', async (t) => {
    const res = await fetch(`${http}/info`)
    t.equal(res.status, 200)
    t.match(await res.json(), {
      name: 'test',
      public_key: circle.publicKey,
      version: String,
      policy: { run: 'authenticated', write: 'owner' },
      limits: { max_frame_bytes: 1048576, script_timeout_ms: 1000, nonce_ttl_ms: 300000 },
    })
  })

  t.test('GET /healthz', async (t) => {
    const res = await fetch(`${http}/healthz`)
    t.same([res.status, await res.json()], [200, { status: 'ok' }])
  })

  t.test('GET /metrics is on the admin listener only, in Prometheus text', async (t) => {
    t.equal((await fetch(`${http}/metrics`)).status, 404, 'not on a public circle port')
    const socket = await openSocket(http.replace('http', 'ws') + '/')
    await socket.call('fetch_nonce', { pubkey: generateKeyPair().publicKey })
    socket.close()
    const res = await fetch(`${admin}/metrics`)
    t.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/)
    const text = await res.text()
    t.match(text, /# TYPE circles_requests_total counter/)
    t.match(text, /circles_requests_total\{method="fetch_nonce"\} [1-9]/)
    t.match(text, /circles_peers_registered 1/)
    t.match(text, /# TYPE circles_play_duration_seconds histogram/)
  })

  t.test('unknown paths and methods: one HTTP error body, { code, message, ...details }', async (t) => {
    const notFound = await fetch(`${http}/nope`)
    t.equal(notFound.status, 404)
    t.match(await notFound.json(), { code: 'NOT_FOUND', message: String, endpoints: Array })
    const post = await fetch(`${http}/info`, { method: 'POST' })
    t.equal(post.status, 405)
    t.equal(post.headers.get('allow'), 'GET, HEAD')
    t.match(await post.json(), { code: 'METHOD_NOT_ALLOWED', message: /POST/ })
    const adminMissing = await fetch(`${admin}/nope`)
    t.equal(adminMissing.status, 404)
    t.match(await adminMissing.json(), { code: 'NOT_FOUND', message: String, endpoints: ['/metrics', '/healthz'] })
    const adminPost = await fetch(`${admin}/metrics`, { method: 'POST' })
    t.equal(adminPost.status, 405)
    t.match(await adminPost.json(), { code: 'METHOD_NOT_ALLOWED' })
  })
})

t.test('draining (what SIGTERM does)', async (t) => {
  const { node, circle, url, http } = await startNode(t)
  const socket = await openSocket(url)
  await authenticate(socket, circle)
  const inFlight = socket.call('play', { script: 'const e = Date.now() + 300; while (Date.now() < e) {} "finished"' }, 'slow')
  await sleep(50)
  const closing = node.close()
  const health = await fetch(`${http}/healthz`)
  t.same([health.status, await health.json()], [503, { status: 'draining' }], 'health says draining at once')
  const late = await new Promise<{ status: number; body?: unknown }>((resolve) => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
    ws.on('open', () => resolve({ status: 101 }))
    ws.on('error', () => resolve({ status: -1 }))
  })
  t.match(late, { status: 503, body: { code: 'SHUTTING_DOWN', message: String } }, 'new connections are refused while draining, with the one HTTP error body')
  t.match(await inFlight, { id: 'slow', result: { output: 'finished' } }, 'in-flight work finished and was answered')
  t.same(await socket.closed, { code: 1001, reason: 'SHUTTING_DOWN' })
  await closing
})

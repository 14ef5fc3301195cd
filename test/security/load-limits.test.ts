/**
 * Load limits over real sockets: open connections and `fetch_nonce` / failed `authenticate` per
 * remote address, `play`s per second per caller. They apply to every address but loopback unless
 * `limits.loopback` is on; these tests turn it on and use distinct loopback source addresses.
 */
import t from 'tap'
import { connect } from 'node:net'
import { WebSocket } from 'ws'
import { SimulatedClock } from 'xstate'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../../src/identity/index.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'
import { launchNode } from '../helpers/launched.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'

interface Refusal {
  readonly status: number
  readonly retryAfter: string | undefined
  readonly body: unknown
}

/** Try to open a socket; resolves 'open' or the HTTP refusal. */
function tryOpen(url: string, localAddress: string, forwardedFor?: string): Promise<'open' | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, ...(forwardedFor === undefined ? {} : { headers: { 'x-forwarded-for': forwardedFor } }) })
    ws.on('open', () => {
      ws.close()
      resolve('open')
    })
    ws.on('unexpected-response', (_request, res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }))
    })
    ws.on('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error)
    })
  })
}

const badSignature = (nonce: string) => signPersonalMessage(nonce, generateKeyPair().secretKey)

t.test('load limits, turned on for loopback', async (t) => {
  const { url, node } = await startNode(t, {
    policy: { run: 'anonymous' },
    limits: { loopback: true, connectionsPerAddress: 3, noncesPerMinute: 5, failedAuthPerMinute: 2, playsPerSecond: 5 },
  })
  const sockets: RawSocket[] = []
  t.teardown(() => sockets.forEach((s) => s.close()))
  const open = async (address: string) => {
    const socket = await openSocket(url, { localAddress: address })
    sockets.push(socket)
    return socket
  }

  t.test('connections per address: the next upgrade is refused with HTTP 429, a JSON body and Retry-After', async (t) => {
    for (let i = 0; i < 3; i++) await open('127.0.0.10')
    const refused = await tryOpen(url, '127.0.0.10')
    t.match(refused, {
      status: 429,
      retryAfter: '1',
      body: { code: 'RATE_LIMITED', message: 'At most 3 connections from one address', retry_after_ms: Number },
    })
    t.equal(await tryOpen(url, '127.0.0.11'), 'open', 'another address connects')
  })

  t.test('fetch_nonce per minute per address: RATE_LIMITED with data.retry_after_ms, the socket stays open', { timeout: 10_000 }, async (t) => {
    const socket = await open('127.0.0.20')
    const pubkey = generateKeyPair().publicKey
    for (let i = 0; i < 5; i++) t.match(await socket.call('fetch_nonce', { pubkey }), { result: { nonce: String } }, `nonce ${i + 1}`)
    const refused = await socket.call('fetch_nonce', { pubkey })
    t.match(refused.error, { code: -32036, data: { code: 'RATE_LIMITED', limit: 'nonces' } })
    // 5 a minute: one comes back every 12 s.
    t.ok(refused.error.data.retry_after_ms > 0 && refused.error.data.retry_after_ms <= 12_000, `retry after ${refused.error.data.retry_after_ms} ms`)
    t.match(await socket.call('play', { script: '"open"' }), { result: { output: 'open' } }, 'the socket is still open')
    const other = await open('127.0.0.21')
    t.match(await other.call('fetch_nonce', { pubkey }), { result: { nonce: String } }, 'another address is not limited')
  })

  t.test('failed authenticate per minute per address: RATE_LIMITED, then the socket closes 1008', { timeout: 10_000 }, async (t) => {
    const alice = generateKeyPair()
    for (let i = 0; i < 2; i++) {
      const socket = await open('127.0.0.30')
      const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
      t.match(await socket.call('authenticate', { pubkey: alice.publicKey, signature: badSignature(result.nonce) }), { error: { data: { code: 'INVALID_CREDENTIALS' } } })
      t.equal((await socket.closed).code, 1008)
    }
    const again = await open('127.0.0.30')
    const authAttempt = await again.call('authenticate', { pubkey: alice.publicKey, signature: badSignature('x') })
    t.match(authAttempt.error, { code: -32036, data: { code: 'RATE_LIMITED', limit: 'failed_auth', retry_after_ms: Number } }, 'authenticate is refused')
    t.same(await again.closed, { code: 1008, reason: 'RATE_LIMITED' }, 'and the socket closed')
    const nonceAttempt = await open('127.0.0.30')
    t.match((await nonceAttempt.call('fetch_nonce', { pubkey: alice.publicKey })).error, { data: { code: 'RATE_LIMITED', limit: 'failed_auth' } }, 'so is fetch_nonce')
    t.equal((await nonceAttempt.closed).code, 1008)
    const honest = await open('127.0.0.31')
    t.match(await authenticate(honest, alice), { result: { authenticated: true } }, 'another address authenticates')
  })

  t.test('plays per second per caller: RATE_LIMITED with data.retry_after_ms', { timeout: 10_000 }, async (t) => {
    const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: String(i) } }))
    const codes = (answers: { result?: unknown; error?: { data: { code: string } } }[]) => answers.map((a) => a.error?.data.code ?? 'ok')
    const anonymous = await open('127.0.0.40')
    anonymous.send(batch(6))
    const first = await anonymous.next()
    t.same(codes(first), ['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED'], 'an anonymous caller is counted by address: a burst of 5')
    t.match(first[5].error, { code: -32036, data: { limit: 'plays', retry_after_ms: Number } })
    t.ok(first[5].error.data.retry_after_ms <= 200, 'one play comes back every 200 ms')
    const key: KeyPair = generateKeyPair()
    const a = await open('127.0.0.41')
    const b = await open('127.0.0.42')
    await authenticate(a, key)
    await authenticate(b, key)
    a.send(batch(3))
    t.same(codes(await a.next()), ['ok', 'ok', 'ok'])
    b.send(batch(3))
    t.same(codes(await b.next()), ['ok', 'ok', 'RATE_LIMITED'], 'an authenticated caller is counted by key, whatever its address')
  })

  t.test('the limits are visible in metrics', async (t) => {
    const text = await fetch(`${node.adminUrl}/metrics`).then((r) => r.text())
    for (const limit of ['connections', 'nonces', 'failed_auth', 'plays']) t.match(text, new RegExp(`circles_rate_limited_total\\{limit="${limit}"\\} [1-9]`), limit)
  })
})

t.test('loopback is exempt by default', { timeout: 10_000 }, async (t) => {
  const { url } = await startNode(t, { policy: { run: 'anonymous' }, limits: { connectionsPerAddress: 1, noncesPerMinute: 1, failedAuthPerMinute: 1, playsPerSecond: 1 } })
  const sockets = [await openSocket(url), await openSocket(url), await openSocket(url)]
  t.teardown(() => sockets.forEach((s) => s.close()))
  const [s1, s2] = sockets as [RawSocket, RawSocket]
  const pubkey = generateKeyPair().publicKey
  for (let i = 0; i < 3; i++) t.match(await s1.call('fetch_nonce', { pubkey }), { result: { nonce: String } })
  s1.send(Array.from({ length: 5 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '1' } })))
  t.ok((await s1.next()).every((a: { result?: unknown }) => a.result !== undefined), 'five plays at once')
  for (let i = 0; i < 3; i++) {
    const socket = await openSocket(url)
    const { result } = await socket.call('fetch_nonce', { pubkey })
    t.match(await socket.call('authenticate', { pubkey, signature: badSignature(result.nonce) }), { error: { data: { code: 'INVALID_CREDENTIALS' } } }, `failure ${i + 1}: INVALID_CREDENTIALS, never RATE_LIMITED`)
  }
  t.match(await s2.call('play', { script: '"served"' }), { result: { output: 'served' } })
})

t.test('circles launch takes the load limits from its command line', { timeout: 60_000 }, async (t) => {
  const node = await launchNode(t, {
    circles: [{ name: 'board', port: 0, policy: { run: 'anonymous' } }],
    args: ['--limits-loopback', '--connections-per-address', '1', '--plays-per-second', '2', '--trusted-proxy', '127.0.0.51'],
  })
  const url = node.circles['board']!.url
  const socket = await openSocket(url, { localAddress: '127.0.0.50' })
  t.match(await tryOpen(url, '127.0.0.50'), { status: 429, body: { code: 'RATE_LIMITED' } }, '--connections-per-address 1')
  const proxied = new WebSocket(url, { localAddress: '127.0.0.51', headers: { 'x-forwarded-for': '203.0.113.9' } })
  await new Promise((resolve, reject) => proxied.once('open', resolve).once('error', reject))
  t.match(await tryOpen(url, '127.0.0.51', '203.0.113.9'), { status: 429 }, '--trusted-proxy: the forwarded client is counted')
  t.equal(await tryOpen(url, '127.0.0.51', '203.0.113.10'), 'open', 'and another forwarded client is another client')
  proxied.close()
  socket.send(Array.from({ length: 3 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '1' } })))
  t.same((await socket.next()).map((a: { error?: { data: { code: string } } }) => a.error?.data.code ?? 'ok'), ['ok', 'ok', 'RATE_LIMITED'], '--plays-per-second 2')
  socket.close()
})

/** An upgrade request ws refuses (no Sec-WebSocket-Key): resolves with the response once the node closed the socket. */
function malformedUpgrade(url: string, localAddress: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress }, () => {
      socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
    })
    let text = ''
    socket.on('data', (c: Buffer) => (text += c.toString()))
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
  })
}

t.test('a connection slot comes back whatever becomes of the handshake', async (t) => {
  const { url } = await startNode(t, { limits: { loopback: true, connectionsPerAddress: 2 } })
  for (let i = 0; i < 5; i++) t.match(await malformedUpgrade(url, '127.0.0.80'), /^HTTP\/1\.1 400 /, `malformed upgrade ${i + 1}: 400, and the node closed the socket`)
  const sockets = [await openSocket(url, { localAddress: '127.0.0.80' }), await openSocket(url, { localAddress: '127.0.0.80' })]
  t.pass('both slots of the address are free')
  t.match(await tryOpen(url, '127.0.0.80'), { status: 429 }, 'and the third is refused: the slots are counted')
  sockets.forEach((s) => s.close())
  await Promise.all(sockets.map((s) => s.closed))
  t.equal(await tryOpen(url, '127.0.0.80'), 'open', 'closed sockets give their slots back')
})

t.test('X-Forwarded-For names the client from a trusted proxy only; IPv6 clients count by /64', async (t) => {
  const { url } = await startNode(t, { trustedProxies: ['127.0.0.90'], limits: { loopback: true, connectionsPerAddress: 1 } })
  const held: RawSocket[] = []
  t.teardown(() => held.forEach((s) => s.close()))
  const hold = async (localAddress: string, forwardedFor: string) => {
    const ws = new WebSocket(url, { localAddress, headers: { 'x-forwarded-for': forwardedFor } })
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    held.push({ close: () => ws.close() } as RawSocket)
  }
  await hold('127.0.0.90', '203.0.113.1')
  t.match(await tryOpen(url, '127.0.0.90', '203.0.113.1'), { status: 429 }, 'through the proxy, the forwarded client is counted')
  t.equal(await tryOpen(url, '127.0.0.90', '198.51.100.7, 203.0.113.2'), 'open', 'another client behind the proxy has its own slot (the forged first hop is not read)')
  await hold('127.0.0.91', '203.0.113.3')
  t.match(await tryOpen(url, '127.0.0.91', '203.0.113.4'), { status: 429 }, 'from a peer that is not a trusted proxy the header is ignored: the peer is counted')
  await hold('127.0.0.90', '2001:db8:1:2::1')
  t.match(await tryOpen(url, '127.0.0.90', '2001:db8:1:2:ffff::9'), { status: 429 }, 'an address of the same /64 is the same client')
  t.equal(await tryOpen(url, '127.0.0.90', '2001:db8:1:3::1'), 'open', 'another /64 is another client')
})

t.test('frames and frame bytes per address cost their sender: past the budget its sockets are not read for a while', async (t) => {
  const clock = new SimulatedClock()
  const { url, admin } = await startNode(t, { clock, policy: { run: 'anonymous' }, limits: { loopback: true, framesPerSecond: 5, frameBytesPerSecond: 4096 } })
  const pubkey = generateKeyPair().publicKey
  const nonce = (id: string) => ({ jsonrpc: '2.0', id, method: 'fetch_nonce', params: { pubkey } })
  const socket = await openSocket(url, { localAddress: '127.0.0.81' })
  const bystander = await openSocket(url, { localAddress: '127.0.0.82' })
  t.teardown(() => [socket, bystander].forEach((s) => s.close()))
  /** What the node has read so far, seen after another client's play went through the sandbox (many event-loop turns). */
  const read = async () => {
    t.match(await bystander.call('play', { script: '"turns"' }), { result: { output: 'turns' } })
    const m = await scrape(admin)
    return { nonces: valueOf(m, 'circles_requests_total', { method: 'fetch_nonce' }), frames: valueOf(m, 'circles_rate_limited_total', { limit: 'frames' }), bytes: valueOf(m, 'circles_rate_limited_total', { limit: 'frame_bytes' }) }
  }

  socket.sendAll(['1', '2', '3', '4', '5', '6', '7'].map(nonce))
  for (let i = 0; i < 7; i++) t.match(await socket.next(), { result: { nonce: String } }, `frame ${i + 1}, read in one go, is answered`)
  socket.send(nonce('late'))
  t.same(await read(), { nonces: 7, frames: 2, bytes: 0 }, 'two frames over five a second: the late frame is not read')
  clock.increment(399)
  t.same(await read(), { nonces: 7, frames: 2, bytes: 0 }, '399 ms later it still is not')
  clock.increment(1)
  t.match(await socket.next(), { id: 'late', result: { nonce: String } }, 'at 400 ms the debt is repaid: it is read and answered')
  t.same(await read(), { nonces: 8, frames: 3, bytes: 0 }, 'and puts the address in debt again')
  clock.increment(1_000)

  // 10,000 bytes at 4,096 a second: 5,904 over, 1,442 ms to repay.
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 'big', method: 'play', params: { script: `/*${'x'.repeat(9_910)}*/ "big"` } }).padEnd(10_000, ' '))
  t.match(await socket.next(), { id: 'big', result: { output: 'big' } })
  socket.send(nonce('after-big'))
  t.match(await read(), { bytes: 1 }, 'the big frame put the address over its bytes')
  clock.increment(1_441)
  t.match(await read(), { nonces: 8 }, 'not read 1,441 ms later')
  clock.increment(1)
  t.match(await socket.next(), { id: 'after-big', result: { nonce: String } }, 'read at 1,442 ms')
})

t.test('a socket that keeps sending frames that run nothing is closed (1008)', async (t) => {
  const { url, admin } = await startNode(t, { clock: new SimulatedClock(), policy: { run: 'anonymous' }, limits: { loopback: true, invalidFramesPerMinute: 3 } })
  const socket = await openSocket(url, { localAddress: '127.0.0.83' })
  const neighbour = await openSocket(url, { localAddress: '127.0.0.83' })
  t.teardown(() => [socket, neighbour].forEach((s) => s.close()))
  socket.send([{ jsonrpc: '2.0', id: 1, method: 'nope' }, { jsonrpc: '2.0', id: 2, method: 'play', params: { script: '2' } }])
  t.match(await socket.next(), [{ error: { data: { code: 'METHOD_NOT_FOUND' } } }, { result: { output: '2' } }], 'a frame that runs something is not counted')
  socket.send('not json')
  t.match(await socket.next(), { error: { data: { code: 'PARSE_ERROR' } } })
  socket.send(['x'])
  t.match(await socket.next(), [{ error: { data: { code: 'INVALID_REQUEST' } } }])
  socket.ws.send(Buffer.from('binary'), { binary: true })
  t.match(await socket.next(), { error: { data: { code: 'INVALID_REQUEST' } } }, 'the third: answered as usual')
  socket.send('[[[]]]')
  t.match(await socket.next(), { id: null, error: { code: -32036, data: { code: 'RATE_LIMITED', limit: 'invalid_frames', retry_after_ms: 20_000 } } }, 'the fourth within the minute is refused')
  t.same(await socket.closed, { code: 1008, reason: 'RATE_LIMITED' }, 'and the socket closed')
  t.match(await neighbour.call('play', { script: '"fine"' }), { result: { output: 'fine' } }, 'the budget is per socket: another socket of the address is served')
  t.equal(valueOf(await scrape(admin), 'circles_rate_limited_total', { limit: 'invalid_frames' }), 1)
})

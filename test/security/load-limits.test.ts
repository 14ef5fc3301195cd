/**
 * Load limits over real sockets: open connections and `fetch_nonce` / failed `authenticate` per
 * remote address, `play`s per second per caller. They apply to every address but loopback unless
 * `limits.loopback` is on; these tests turn it on and use distinct loopback source addresses.
 */
import t from 'tap'
import { WebSocket } from 'ws'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../../src/identity/index.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'
import { launchNode } from '../helpers/launched-node.js'

interface Refusal {
  readonly status: number
  readonly retryAfter: string | undefined
  readonly body: unknown
}

/** Try to open a socket; resolves 'open' or the HTTP refusal. */
function tryOpen(url: string, localAddress: string): Promise<'open' | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress })
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
    args: ['--limits-loopback', '--connections-per-address', '1', '--plays-per-second', '2'],
  })
  const url = node.circles.get('board')!.url
  const socket = await openSocket(url, { localAddress: '127.0.0.50' })
  t.match(await tryOpen(url, '127.0.0.50'), { status: 429, body: { code: 'RATE_LIMITED' } }, '--connections-per-address 1')
  socket.send(Array.from({ length: 3 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '1' } })))
  t.same((await socket.next()).map((a: { error?: { data: { code: string } } }) => a.error?.data.code ?? 'ok'), ['ok', 'ok', 'RATE_LIMITED'], '--plays-per-second 2')
  socket.close()
})

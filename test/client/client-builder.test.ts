/**
 * CirclesClientBuilder: every option checked when given (INVALID_OPTION naming it), and the
 * options given reaching the client it builds — a WebSocket implementation and a timeout, seen
 * through a connection to a real listener that accepts TCP and never answers the upgrade.
 */
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { WebSocket } from 'ws'
import { generateKeyPair } from '../../src/identity/index.js'
import { CirclesClientBuilder } from '../../src/client/client-builder.js'
import { InvalidOptionError } from '../../src/client/errors.js'

const KEY = generateKeyPair()

function invalid(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof InvalidOptionError) return error.message
    throw error
  }
  return undefined
}

t.test('the URL must be ws:// or wss:// with a host', async (t) => {
  for (const url of ['ws://h:1/', 'WSS://h/', `wss://h/${KEY.publicKey}`]) t.equal(invalid(() => new CirclesClientBuilder(url)), undefined, url)
  for (const url of ['http://h/', 'ws:///path', 'h:1', '', 42 as unknown as string]) t.equal(invalid(() => new CirclesClientBuilder(url)), 'url must be a ws:// or wss:// URL', String(url))
})

t.test('withKey: a secret key or a Signer', async (t) => {
  const b = new CirclesClientBuilder('ws://h/')
  t.equal(b.withKey(KEY.secretKey), b, 'chainable')
  t.equal(invalid(() => b.withKey({ signMessage: async () => '0x' })), undefined)
  t.match(invalid(() => b.withKey('abc')), /^secret key: /)
  t.equal(invalid(() => b.withKey({} as never)), 'withKey: give a 64-hex secret key or a Signer ({ publicKey? , address?, signMessage })')
  t.equal(invalid(() => b.withKey(null as never)), 'withKey: give a 64-hex secret key or a Signer ({ publicKey? , address?, signMessage })')
})

t.test('withTimeout, withReconnect, withWebSocket', async (t) => {
  const b = new CirclesClientBuilder('ws://h/')
  for (const ms of [0, -1, 1.5, Number.NaN]) t.equal(invalid(() => b.withTimeout(ms)), 'withTimeout: ms must be a positive integer', String(ms))
  t.equal(invalid(() => b.withTimeout(1)), undefined)
  t.equal(invalid(() => b.withReconnect()), undefined, 'the default policy')
  t.equal(invalid(() => b.withReconnect({ maxAttempts: 0 })), 'withReconnect: maxAttempts must be a number ≥ 1')
  t.equal(invalid(() => b.withWebSocket('ws' as never)), 'withWebSocket: give a WebSocket constructor')
})

t.test('withContextKey: a public key, the same as the URL names if it names one', async (t) => {
  t.equal(invalid(() => new CirclesClientBuilder('ws://h/').withContextKey(`0x${KEY.publicKey.toUpperCase()}`)), undefined)
  t.equal(invalid(() => new CirclesClientBuilder('ws://h/').withContextKey('nope')), 'withContextKey: give a secp256k1 public key, hex (compressed or uncompressed)')
  t.equal(invalid(() => new CirclesClientBuilder(`ws://h/${KEY.publicKey}`).withContextKey(KEY.publicKey)), undefined, 'the same key as the path')
  const other = generateKeyPair().publicKey
  t.equal(invalid(() => new CirclesClientBuilder(`ws://h/${KEY.publicKey}`).withContextKey(other)), `withContextKey: the URL names another context (${KEY.publicKey})`)
})

t.test('build: the client has the URL and uses the timeout and WebSocket given', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => sockets.add(socket))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    silent.close()
  })
  const port = (silent.address() as { port: number }).port
  const url = `ws://127.0.0.1:${port}/`
  const client = new CirclesClientBuilder(url).withWebSocket(WebSocket as never).withTimeout(50).build()
  t.equal(client.url, url)
  t.equal(client.state, 'idle')
  await t.rejects(client.connect(), { code: 'CONNECT_FAILED', message: `cannot connect to ${url}: no connection within 50 ms` })
  await client.close()
})

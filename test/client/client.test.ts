import t from 'tap'
import {
  CirclesClient,
  CirclesClientError,
  ConnectError,
  ConnectionClosedError,
  InvalidOptionError,
  RequestAbortedError,
  RequestTimeoutError,
  RpcError,
  type ClientState,
  type Signer,
} from '../../src/client/index.js'
import { ERROR_REGISTRY, type ErrorCode } from '../../src/errors/index.js'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'
import { startNode } from '../helpers/node.js'

type Teardown = { teardown(fn: () => unknown): void }

/** A connected client (authenticated when a key is given), closed at teardown. */
async function connected(t: Teardown, url: string, key?: string | Signer): Promise<CirclesClient> {
  const builder = CirclesClient.builder(url)
  const client = (key === undefined ? builder : builder.withKey(key)).build()
  t.teardown(() => client.close())
  await client.connect()
  if (key !== undefined) await client.authenticate()
  return client
}

/** A script that keeps its run busy for `ms` (the sandbox has no timers). */
const busy = (ms: number) => `const end = Date.now() + ${ms}; while (Date.now() < end) {} "done"`

t.test('the full flow against a real node', async (t) => {
  const { node, circle, url } = await startNode(t)
  await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'save_data("profile", { name: "Bob" })' })
  const alice = generateKeyPair()
  const client = CirclesClient.builder(url).withKey(alice.secretKey).withTimeout(10_000).build()
  const states: ClientState[] = []
  client.onStateChange((state) => states.push(state))
  t.equal(client.state, 'idle')
  await client.connect()
  t.equal(client.state, 'open')
  t.equal(await client.authenticate(), alice.publicKey, 'authenticate resolves to the key')
  t.equal(client.publicKey, alice.publicKey)
  const result = await client.play('print("hi", 1); [CALLER_PUBLIC_KEY, CIRCLE_PUBLIC_KEY, load_data("profile").name]')
  t.same(result.result, [alice.publicKey, circle.publicKey, 'Bob'])
  t.equal(result.output, JSON.stringify([alice.publicKey, circle.publicKey, 'Bob']))
  t.same(result.logs, ['hi 1'])
  t.match(result, { task_id: String, timings: { queued_ms: Number, run_ms: Number, cpu_ms: Number } })
  const info = await client.info()
  t.match(info, {
    name: 'test',
    public_key: circle.publicKey,
    policy: { run: 'authenticated', write: 'owner', call: 'owner', subscribe: 'authenticated' },
    methods: ['fetch_nonce', 'authenticate', 'play', 'subscribe', 'unsubscribe'],
  })
  t.same(Object.keys(info.policy).sort(), ['call', 'run', 'subscribe', 'write'], '/info prints the four rules')
  t.equal(typeof info.limits['script_timeout_ms'], 'number')
  await client.close()
  t.same(states, ['connecting', 'open', 'authenticated', 'closed'])
  await t.rejects(client.play('1'), { code: 'CONNECTION_CLOSED' }, 'a closed client refuses requests')
})

t.test('100 plays in flight on one socket, each matched to its answer by id', async (t) => {
  const { url } = await startNode(t)
  const client = await connected(t, url, generateKeyPair().secretKey)
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => client.play(`print(${i}); ${i} * 2`)))
  t.same(results.map((r) => r.result), Array.from({ length: 100 }, (_, i) => i * 2))
  t.same(results.map((r) => r.logs[0]), Array.from({ length: 100 }, (_, i) => String(i)))
})

t.test('every error answer a client can provoke is an RpcError carrying data.code', async (t) => {
  const { node, url } = await startNode(t, {
    policy: { run: 'authenticated', write: 'authenticated' },
    gateway: { maxScriptBytes: 2_048, maxFrameBytes: 8_192, maxInFlight: 3 },
    peers: { quota: { maxDocumentBytes: 200 }, limits: { maxOutputBytes: 1_000 } },
  })
  const ownerOnly = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: ownerOnly.publicKey })
  const tiny = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: tiny.publicKey, policy: { run: 'anonymous' }, mailboxCapacity: 1 })
  const key = generateKeyPair()

  const expectCode = async (t: Tap, code: ErrorCode, promise: Promise<unknown>) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(error instanceof RpcError, `${code}: an RpcError`)
    t.ok(error instanceof CirclesClientError, `${code}: a CirclesClientError`)
    t.match(error, { code, data: { code }, rpcCode: ERROR_REGISTRY[code].rpc }, code)
    return error as RpcError
  }
  type Tap = typeof t

  const anonymous = await connected(t, url)
  await expectCode(t, 'AUTH_REQUIRED', anonymous.play('1'))
  await expectCode(t, 'METHOD_NOT_FOUND', anonymous.request('no_such_method' as 'play', { script: '' }))

  const client = await connected(t, url, key.secretKey)
  const error = await expectCode(t, 'SCRIPT_ERROR', client.play('print("before"); throw new TypeError("boom")'))
  t.equal(error.message, 'TypeError: boom')
  t.same(error.data['logs'], ['before'], 'error data carries the logs')
  await expectCode(t, 'SCRIPT_TIMEOUT', client.play('while (true) {}', { scriptTimeoutMs: 50 }))
  await expectCode(t, 'OUTPUT_TOO_LARGE', client.play('"x".repeat(2000)'))
  await expectCode(t, 'SCRIPT_TOO_LARGE', client.play(`"${'x'.repeat(3_000)}"`))
  await expectCode(t, 'INVALID_NAME', client.play('load_data("../escape")'))
  await expectCode(t, 'INVALID_DOCUMENT', client.play('save_data("doc", 10n)'))
  await expectCode(t, 'QUOTA_EXCEEDED', client.play('save_data("big", "x".repeat(500))'))
  const params = await expectCode(t, 'INVALID_PARAMS', client.play('1', { scriptTimeoutMs: 0 }))
  t.equal(params.data['field'], 'timeout_ms')
  await expectCode(t, 'ALREADY_AUTHENTICATED', client.authenticate())
  const crowd = await Promise.allSettled(Array.from({ length: 5 }, () => client.play(busy(100))))
  const refused = crowd.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.ok(refused.length >= 1 && refused.every((r) => r.reason instanceof RpcError && r.reason.code === 'TOO_MANY_IN_FLIGHT'), 'past 3 in flight: TOO_MANY_IN_FLIGHT')

  const elsewhere = await connected(t, `${url}${ownerOnly.publicKey}`, key.secretKey)
  await expectCode(t, 'FORBIDDEN', elsewhere.play('save_data("x", 1)'))
  const unknown = await connected(t, `${url}${generateKeyPair().publicKey}`)
  await expectCode(t, 'UNKNOWN_CIRCLE', unknown.play('1'))

  const full = await connected(t, `${url}${tiny.publicKey}`)
  const burst = await Promise.allSettled([full.play(busy(100)), full.play(busy(10)), full.play(busy(10))])
  t.ok(burst.some((r) => r.status === 'rejected' && r.reason instanceof RpcError && r.reason.code === 'OVERLOADED'), 'a full mailbox: OVERLOADED')

  const badKey = CirclesClient.builder(url).withKey({ publicKey: `02${'f'.repeat(64)}`, signMessage: async () => '0x' } as Signer).build()
  t.teardown(() => badKey.close())
  await badKey.connect()
  await expectCode(t, 'INVALID_PUBLIC_KEY', badKey.authenticate())

  // A signer that claims Alice's key and signs with another: the node refuses and closes (1008).
  const other = generateKeyPair()
  const impostor = await connected(t, url)
  const forged: Signer = { publicKey: key.publicKey, signMessage: async (m) => signPersonalMessage(m, other.secretKey) }
  await expectCode(t, 'INVALID_CREDENTIALS', impostor.authenticate({ signer: forged }))
  await t.rejects(impostor.play('1'), { code: 'CONNECTION_CLOSED', closeCode: 1008 }, 'the node closed the connection')
  t.equal(impostor.state, 'closed')

  // A frame over the node's limit: the node cuts the connection with 1009 (PAYLOAD_TOO_LARGE's close code).
  const big = await connected(t, url, key.secretKey)
  const cut = await big.play('x'.repeat(9_000)).catch((e: unknown) => e)
  t.ok(cut instanceof ConnectionClosedError)
  t.match(cut, { code: 'CONNECTION_CLOSED', closeCode: ERROR_REGISTRY.PAYLOAD_TOO_LARGE.close, data: { code: 'CONNECTION_CLOSED', close_code: 1009 } })
})

t.test('errors the client raises itself carry codes too', async (t) => {
  const { url } = await startNode(t, { policy: { run: 'anonymous' } })

  t.test('REQUEST_TIMEOUT: no answer within the deadline; the connection goes on', async (t) => {
    const client = await connected(t, url)
    const error = await client.play(busy(300), { timeoutMs: 30 }).catch((e: unknown) => e)
    t.ok(error instanceof RequestTimeoutError)
    t.match(error, { code: 'REQUEST_TIMEOUT', data: { code: 'REQUEST_TIMEOUT', method: 'play', timeout_ms: 30 } })
    t.equal((await client.play('"still here"')).output, 'still here', 'the late answer was dropped, later ones arrive')
    const slow = CirclesClient.builder(url).withTimeout(20).build()
    t.teardown(() => slow.close())
    await slow.connect()
    await t.rejects(slow.play(busy(200)), { code: 'REQUEST_TIMEOUT', timeoutMs: 20 }, 'withTimeout sets the default deadline')
  })

  t.test('ABORTED: an AbortSignal stops the wait, before or after sending', async (t) => {
    const client = await connected(t, url)
    const controller = new AbortController()
    const pending = client.play(busy(300), { signal: controller.signal })
    controller.abort()
    const error = await pending.catch((e: unknown) => e)
    t.ok(error instanceof RequestAbortedError)
    t.match(error, { code: 'ABORTED', data: { code: 'ABORTED' } })
    await t.rejects(client.play('1', { signal: AbortSignal.abort() }), { code: 'ABORTED' }, 'an aborted signal sends nothing')
    t.equal((await client.play('2')).output, '2')
  })

  t.test('CONNECT_FAILED: nothing listens there', async (t) => {
    const client = CirclesClient.builder('ws://127.0.0.1:1/').build()
    const error = await client.connect().catch((e: unknown) => e)
    t.ok(error instanceof ConnectError)
    t.match(error, { code: 'CONNECT_FAILED', message: /^cannot connect to ws:\/\/127\.0\.0\.1:1\// })
    t.equal(client.state, 'idle', 'connect() may be tried again')
  })

  t.test('CONNECTION_CLOSED: a request before connect() or after close()', async (t) => {
    const client = CirclesClient.builder(url).build()
    const early = await client.play('1').catch((e: unknown) => e)
    t.ok(early instanceof ConnectionClosedError)
    t.match(early, { code: 'CONNECTION_CLOSED', message: /call connect\(\) first/ })
    await client.connect()
    const inFlight = t.rejects(client.play(busy(200)), { code: 'CONNECTION_CLOSED' }, 'requests waiting when the client closes')
    await client.close()
    await inFlight
  })

  t.test('INVALID_OPTION: the builder checks what it is given, with the client\'s own error class', async (t) => {
    const invalid = (thrower: () => unknown): unknown => {
      try {
        thrower()
      } catch (error) {
        return error
      }
      return undefined
    }
    t.type(invalid(() => CirclesClient.builder('http://127.0.0.1/')), InvalidOptionError)
    t.type(invalid(() => CirclesClient.builder(url).withKey('not a key')), InvalidOptionError, 'a bad secret key too')
    t.type(invalid(() => CirclesClient.builder(url).withReconnect({ maxAttempts: 0 })), InvalidOptionError)
    t.throws(() => CirclesClient.builder('http://127.0.0.1/'), { code: 'INVALID_OPTION', message: /ws:\/\/ or wss:\/\// })
    t.throws(() => CirclesClient.builder(url).withTimeout(0), { code: 'INVALID_OPTION', message: /withTimeout/ })
    t.throws(() => CirclesClient.builder(url).withKey('not a key'), { code: 'INVALID_OPTION', message: /secret key/ })
    t.throws(() => CirclesClient.builder(url).withKey({} as Signer), { code: 'INVALID_OPTION', message: /withKey/ })
    t.throws(() => CirclesClient.builder(url).withReconnect({ maxAttempts: 0 }), { code: 'INVALID_OPTION', message: /maxAttempts/ })
    t.throws(() => CirclesClient.builder(url).withContextKey('02abc'), { code: 'INVALID_OPTION', message: /withContextKey/ })
    const [a, b] = [generateKeyPair().publicKey, generateKeyPair().publicKey]
    t.throws(() => CirclesClient.builder(`${url}${a}`).withContextKey(b), { code: 'INVALID_OPTION', message: /the URL names another context/ })
    t.doesNotThrow(() => CirclesClient.builder(`${url}${a}`).withContextKey(`0x${a.toUpperCase()}`), 'the same key, written another way')
    const keyless = await connected(t, url)
    await t.rejects(keyless.authenticate(), { code: 'INVALID_OPTION', message: /no key/ })
    await t.rejects(keyless.authenticate(), InvalidOptionError)
  })
})

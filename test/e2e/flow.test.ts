import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { computeAddress, getAddress } from 'ethers'
import { createSiweMessage, parseSiweMessage } from 'viem/siwe'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'
import { busyScript, someOverlap } from '../helpers/sandbox.js'

t.test('the protocol flow of docs/protocol.md over a real socket', async (t) => {
  const { node, circle: bob, url } = await startNode(t)
  // Bob (the circle's owner) keeps a public profile in his own context.
  await node.peers.play(bob.publicKey, { caller: bob.publicKey, script: 'save_data("profile", { name: "Bob" })' })
  const alice = generateKeyPair()

  t.test('peer A runs a script in peer B context: sees both keys and B data', async (t) => {
    const socket = await openSocket(url)
    t.same(await authenticate(socket, alice), { jsonrpc: '2.0', id: 2, result: { authenticated: true } })
    const answer = await socket.call('play', { script: '[CALLER_PUBLIC_KEY, CIRCLE_PUBLIC_KEY, load_data("profile").name]' }, 'p1')
    t.equal(answer.id, 'p1')
    t.same(JSON.parse(answer.result.output), [alice.publicKey, bob.publicKey, 'Bob'])
    t.same(answer.result.result, [alice.publicKey, bob.publicKey, 'Bob'], 'result carries the value as JSON')
    t.match(answer.result, { logs: [], task_id: /^[0-9a-f-]{36}$/, timings: { queued_ms: Number, run_ms: Number, cpu_ms: Number } })
    socket.close()
  })

  t.test('peer A is refused writes in B context (FORBIDDEN)', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, alice)
    const answer = await socket.call('play', { script: 'save_data("profile", { name: "Mallory" })' }, 9)
    t.same(answer, {
      jsonrpc: '2.0',
      id: 9,
      error: { code: -32006, message: "save_data: the circle's policy does not let this caller write", data: answer.error.data },
    })
    t.match(answer.error.data, { code: 'FORBIDDEN', task_id: String })
    socket.close()
  })

  t.test('the owner writes', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, bob)
    const answer = await socket.call('play', { script: 'save_data("profile", { name: "Bob B." }); load_data("profile").name' })
    t.equal(answer.result.output, 'Bob B.')
    socket.close()
  })

  t.test('play before authenticate answers AUTH_REQUIRED and keeps the socket open', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    const answer = await socket.call('play', { script: '1' }, 1)
    t.same(answer.error, { code: -32001, message: 'This circle does not admit anonymous callers: authenticate first', data: { code: 'AUTH_REQUIRED' } })
    t.match(await authenticate(socket, alice), { jsonrpc: '2.0', result: { authenticated: true } }, 'the same socket can still authenticate')
    socket.close()
  })

  t.test('a second authenticate answers ALREADY_AUTHENTICATED', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, alice)
    const again = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
    t.equal(again.error.data.code, 'ALREADY_AUTHENTICATED')
    socket.close()
  })
})

t.test('authenticate failures close the socket with 1008', async (t) => {
  const { url, circle } = await startNode(t)
  const alice = generateKeyPair()

  t.test('a bad signature: INVALID_CREDENTIALS, then close 1008', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
    const forged = signPersonalMessage(result.nonce, generateKeyPair().secretKey)
    const answer = await socket.call('authenticate', { pubkey: alice.publicKey, signature: forged }, 'auth')
    t.same(answer, { jsonrpc: '2.0', id: 'auth', error: { code: -32002, message: 'Signature does not match the public key and nonce', data: { code: 'INVALID_CREDENTIALS' } } })
    t.same(await socket.closed, { code: 1008, reason: 'INVALID_CREDENTIALS' })
  })

  t.test('a nonce replayed on another socket: NONCE_UNKNOWN, close 1008', { timeout: 10_000 }, async (t) => {
    const first = await openSocket(url)
    const { result } = await first.call('fetch_nonce', { pubkey: alice.publicKey })
    const signature = signPersonalMessage(result.nonce, alice.secretKey)
    const second = await openSocket(url)
    await second.call('fetch_nonce', { pubkey: alice.publicKey })
    const answer = await second.call('authenticate', { pubkey: alice.publicKey, signature })
    t.equal(answer.error.data.code, 'INVALID_CREDENTIALS', 'a signature over another socket nonce does not verify')
    t.equal((await second.closed).code, 1008)
    const third = await openSocket(url)
    const unissued = await third.call('authenticate', { pubkey: alice.publicKey, signature })
    t.equal(unissued.error.data.code, 'NONCE_UNKNOWN', 'no nonce was issued on this socket')
    t.equal((await third.closed).code, 1008)
    first.close()
  })

  t.test('a nonce is single use', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
    const signature = signPersonalMessage(result.nonce, alice.secretKey)
    t.same((await socket.call('authenticate', { pubkey: alice.publicKey, signature })).result, { authenticated: true })
    const replay = await openSocket(url)
    t.equal((await replay.call('authenticate', { pubkey: alice.publicKey, signature })).error.data.code, 'NONCE_UNKNOWN')
    socket.close()
  })

  t.test('authenticate as another key than the nonce was issued for: NONCE_UNKNOWN', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
    const bob = generateKeyPair()
    const answer = await socket.call('authenticate', { pubkey: bob.publicKey, signature: signPersonalMessage(result.nonce, bob.secretKey) })
    t.equal(answer.error.data.code, 'NONCE_UNKNOWN')
    t.equal((await socket.closed).code, 1008)
  })

  t.test('a compressed key that is not on the curve is refused at fetch_nonce (it has no address to sign in as)', { timeout: 10_000 }, async (t) => {
    const { parsePublicKey } = await import('../../src/identity/index.js')
    let offCurve = ''
    for (let x = 5n; offCurve === ''; x++) {
      const hex = `02${x.toString(16).padStart(64, '0')}`
      try {
        parsePublicKey(hex)
      } catch {
        offCurve = hex
      }
    }
    const socket = await openSocket(url)
    const nonce = await socket.call('fetch_nonce', { pubkey: offCurve })
    t.equal(nonce.error.data.code, 'INVALID_PUBLIC_KEY')
    const answer = await socket.call('authenticate', { pubkey: offCurve, signature: signPersonalMessage('anything', alice.secretKey) })
    t.equal(answer.error.data.code, 'NONCE_UNKNOWN', 'no message was issued')
    t.equal((await socket.closed).code, 1008)
  })

  t.test('malformed params to authenticate also close the socket', { timeout: 10_000 }, async (t) => {
    const socket = await openSocket(url)
    const answer = await socket.call('authenticate', { pubkey: alice.publicKey, signature: 'nope' })
    t.equal(answer.error.code, -32602)
    socket.close()
  })

  t.test('fetch_nonce answers an EIP-4361 sign-in message and its expiry in unix seconds', async (t) => {
    const socket = await openSocket(url)
    const before = Date.now()
    const answer = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
    const after = Date.now()
    const text: string = answer.result.nonce
    const fields = parseSiweMessage(text)
    const nonce = /^Nonce: ([0-9a-f]{64})$/m.exec(text)?.[1]
    t.ok(nonce, 'the nonce is 32 random bytes in hex (letters and digits, as EIP-4361 requires)')
    t.ok(fields.issuedAt!.getTime() >= before && fields.issuedAt!.getTime() <= after, 'issued now')
    t.equal(fields.expirationTime!.getTime() - fields.issuedAt!.getTime(), 300_000, 'valid five minutes by default')
    t.equal(answer.result.expires_at, Math.floor(fields.expirationTime!.getTime() / 1000), 'expires_at is the expiration time in unix seconds')
    // Rebuilt by another library from the fields it should hold: the same text, byte for byte.
    const expected = createSiweMessage({
      domain: new URL(url).host,
      address: getAddress(computeAddress(`0x${alice.publicKey}`)) as `0x${string}`,
      statement: `Sign in to the Circles context ${circle.publicKey}.`,
      uri: url,
      version: '1',
      chainId: 1,
      nonce: nonce!,
      issuedAt: fields.issuedAt!,
      expirationTime: fields.expirationTime!,
    })
    t.equal(text, expected)
    socket.close()
  })
})

// A broken TTL would leave the socket open until the idle timeout (5 min): fail fast instead.
t.test('nonce expiry (short TTL)', { timeout: 10_000 }, async (t) => {
  const { url } = await startNode(t, { gateway: { nonceTtlMs: 100 } })
  const alice = generateKeyPair()
  const socket = await openSocket(url)
  const { result } = await socket.call('fetch_nonce', { pubkey: alice.publicKey })
  await sleep(200)
  const answer = await socket.call('authenticate', { pubkey: alice.publicKey, signature: signPersonalMessage(result.nonce, alice.secretKey) })
  t.same(answer.error, { code: -32003, message: 'Nonce expired: fetch a new one', data: { code: 'NONCE_EXPIRED' } })
  t.same(await socket.closed, { code: 1008, reason: 'NONCE_EXPIRED' })
})

t.test('routing by URL path', async (t) => {
  const { node, circle, url } = await startNode(t)
  const carol = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: carol.publicKey, policy: { run: 'anonymous' } })

  t.test('/<pubkey> reaches another context hosted by the node', async (t) => {
    const socket = await openSocket(`${url}${carol.publicKey}`)
    const answer = await socket.call('play', { script: '[CALLER_PUBLIC_KEY, CIRCLE_PUBLIC_KEY]' })
    t.same(answer.result.result, ['', carol.publicKey], 'anonymous caller in a context that admits them')
    socket.close()
  })

  t.test('an uncompressed key in the path is normalised', async (t) => {
    const { secp256k1 } = await import('@noble/curves/secp256k1.js')
    const long = secp256k1.Point.fromHex(circle.publicKey).toHex(false)
    const socket = await openSocket(`${url}${long}`)
    const answer = await socket.call('fetch_nonce', { pubkey: circle.publicKey })
    t.ok(answer.result.nonce)
    socket.close()
  })

  t.test('an unknown key or path answers UNKNOWN_CIRCLE', async (t) => {
    for (const path of [generateKeyPair().publicKey, 'not-a-key', '%zz']) {
      const socket = await openSocket(`${url}${path}`)
      const play = await socket.call('play', { script: '1' })
      t.equal(play.error.code, -32040, path)
      t.equal(play.error.data.code, 'UNKNOWN_CIRCLE')
      const nonce = await socket.call('fetch_nonce', { pubkey: carol.publicKey })
      t.equal(nonce.error.data.code, 'UNKNOWN_CIRCLE')
      socket.close()
    }
  })
})

t.test('ordering and parallelism over sockets', async (t) => {
  const { node, circle, url } = await startNode(t, { sandbox: { processes: 2 } })

  t.test('100 scripts pipelined on one socket observe their own order', async (t) => {
    const socket = await openSocket(url)
    await authenticate(socket, circle)
    for (let i = 0; i < 100; i++) {
      socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: `const l = load_data("order") || []; l.push(${i}); save_data("order", l); l.length` } })
    }
    const answers = await Promise.all(Array.from({ length: 100 }, () => socket.next()))
    const byId = new Map(answers.map((a) => [a.id, a.result.output]))
    t.same(Array.from({ length: 100 }, (_, i) => byId.get(i)), Array.from({ length: 100 }, (_, i) => String(i + 1)))
    const final = await socket.call('play', { script: 'load_data("order")' }, 'final')
    t.same(final.result.result, Array.from({ length: 100 }, (_, i) => i))
    socket.close()
  })

  t.test('10 contexts run in parallel', async (t) => {
    const owners = Array.from({ length: 10 }, () => generateKeyPair())
    for (const o of owners) await node.peers.spawnPeer({ pubkey: o.publicKey, limits: { timeoutMs: 5000, cpuMs: 5000 } })
    const sockets = await Promise.all(owners.map((o) => openSocket(`${url}${o.publicKey}`)))
    await Promise.all(sockets.map((s, i) => authenticate(s, owners[i]!)))
    const answers = await Promise.all(sockets.map((s) => s.call('play', { script: busyScript(100) }, 'busy')))
    const intervals = answers.map((a) => a.result.result as [string, number, number])
    t.same(intervals.map(([key]) => key), owners.map((o) => o.publicKey), 'each ran in its own context')
    t.ok(someOverlap(intervals), 'runs of different contexts ran at the same time')
    for (const s of sockets) s.close()
  })
})

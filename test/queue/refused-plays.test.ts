import t from 'tap'
import { Redis } from 'ioredis'
import { secretKeySigner } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, parseOwnerToken, parseRedisTarget } from '../../src/queue/index.js'
import { connectedClient } from '../helpers/client.js'
import { startNode } from '../helpers/node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { keysUnder, startRedis } from '../helpers/redis-server.js'

// A gateway refuses, before anything is stored, what the owner's policy would refuse, from the
// hint the owner's lease carries — kept fresh when the policy changes — and bounds the bytes of
// scripts one caller address may have queued. Two nodes (the owner's policy is changed through
// its own API) joined through a private redis-server, whose memory is measured.

const SECRET = 'refused-plays-test-secret-0123456789'
/** A script of 250,000 bytes that does nothing. */
const BIG = `/*${'x'.repeat(250_000 - 6)}*/ 1`

/**
 * What Redis holds: the bytes of every key (MEMORY USAGE, every element counted), and all the
 * memory it uses — which also counts client buffers, such as the one a large script arrived in.
 */
async function memory(redis: Redis): Promise<{ stored: number; used: number }> {
  let stored = 0
  for (const key of await keysUnder(redis, '')) stored += (await redis.memory('USAGE', key, 'SAMPLES', 0)) ?? 0
  return { stored, used: Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1]) }
}

t.test('refused plays cost Redis almost nothing', { timeout: 90_000 }, async (t) => {
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const keys = new QueueKeys('rhailib:')
  const target = parseRedisTarget([server.url])
  const owner = await startNode(t, { policy: { run: 'authenticated', write: 'authenticated' }, redis: { target, secret: SECRET } })
  const front = await startNode(t, { redis: { target, secret: SECRET } })
  await owner.node.redis!.whenServing()
  await front.node.redis!.whenServing()
  const context = owner.circle.publicKey
  const url = `${front.url}${context}`
  const contextKeys = async () => (await keysUnder(redis, 'rhailib:')).filter((k) => k.includes(context)).sort()
  const hint = async () => parseOwnerToken(await redis.get(keys.lease(context)))?.hint
  t.equal(BIG.length, 250_000)

  await t.test('74 anonymous 250 KB plays to a context whose policy is run: authenticated', async (t) => {
    t.equal(await hint(), 'k', "the owner's lease says: authenticated callers")
    const before = await memory(redis)
    const socket = await openSocket(url)
    t.teardown(() => socket.close())
    for (let i = 0; i < 74; i++) socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: BIG } })
    const codes = []
    for (let i = 0; i < 74; i++) codes.push((await socket.next(30_000)).error?.data?.code)
    t.same(codes, Array.from({ length: 74 }, () => 'AUTH_REQUIRED'), 'every one answered AUTH_REQUIRED, as the owner answers')
    t.same(await contextKeys(), [keys.lease(context)], 'nothing of theirs is stored: the context has its lease only')
    const after = await memory(redis)
    const grown = after.stored - before.stored
    t.comment(`74 × 250 KB refused plays: keys ${grown >= 0 ? '+' : ''}${grown} bytes; all Redis memory, client buffers included, ${after.used - before.used >= 0 ? '+' : ''}${after.used - before.used} bytes`)
    t.ok(grown < 1_000_000, 'they left under 1 MB of data in Redis')
  })

  await t.test('the hint follows the policy: opened, anonymous plays run; closed to the owner, others are refused', async (t) => {
    await owner.node.peers.spawnPeer({ pubkey: context, policy: { run: 'anonymous', write: 'owner' } })
    t.equal(await hint(), 'a', 'the lease was written again with the new policy')
    const anonymous = await openSocket(url)
    t.teardown(() => anonymous.close())
    t.equal((await anonymous.call('play', { script: 'CALLER_PUBLIC_KEY' })).result?.output, '', 'an anonymous play runs at once')

    await owner.node.peers.spawnPeer({ pubkey: context, policy: { run: 'owner', write: 'owner' } })
    t.equal(await hint(), 'o')
    const stranger = await openSocket(url)
    t.teardown(() => stranger.close())
    await authenticate(stranger, generateKeyPair())
    t.equal((await stranger.call('play', { script: BIG })).error?.data?.code, 'FORBIDDEN', 'another caller is refused FORBIDDEN')
    t.equal((await anonymous.call('play', { script: BIG })).error?.data?.code, 'AUTH_REQUIRED', 'an anonymous one AUTH_REQUIRED')
    const self = await connectedClient(url)
    t.teardown(() => self.close())
    await self.authenticate({ signer: secretKeySigner(owner.circle.secretKey) })
    t.equal((await self.play('CALLER_PUBLIC_KEY')).output, context, 'the owner runs')
    t.same((await contextKeys()).filter((k) => k.includes('{') && !k.startsWith('rhailib:lease:') && !/:[0-9a-f-]{36}$/.test(k)), [], 'no queue or processing list is left')
  })

  await t.test("the bytes one address has queued are bounded: past them, OVERLOADED; once answered, they count no more", async (t) => {
    await owner.node.peers.spawnPeer({ pubkey: context, policy: { run: 'authenticated', write: 'authenticated' } })
    const small = await startNode(t, { redis: { target, secret: SECRET, queuedBytesPerAddress: 400_000 } })
    await small.node.redis!.whenServing()
    const socket = await openSocket(`${small.url}${context}`)
    t.teardown(() => socket.close())
    await authenticate(socket, generateKeyPair())
    // One frame: both are queued in the same turn, the first before the second is looked at.
    socket.send([
      { jsonrpc: '2.0', id: 1, method: 'play', params: { script: BIG } },
      { jsonrpc: '2.0', id: 2, method: 'play', params: { script: BIG } },
    ])
    const [first, second] = (await socket.next(30_000)) as { id: number; result?: { result: unknown }; error?: { data: Record<string, unknown> } }[]
    t.equal(first!.result?.result, 1, 'the first fits the 400,000 bytes of its address')
    t.match(second!.error?.data, { code: 'OVERLOADED', limit: 400_000, scope: 'address' }, 'the second does not')
    t.equal((await socket.call('play', { script: BIG }, 3, 30_000)).result?.result, 1, 'answered, the first no longer counts')
  })
})

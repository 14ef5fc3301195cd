import t from 'tap'
import { Redis } from 'ioredis'
import { generateKeyPair } from '../../src/identity/index.js'
import { parseRedisTarget } from '../../src/queue/index.js'
import { startNode } from '../helpers/node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { keysUnder, startRedis } from '../helpers/redis-server.js'

// What Redis keeps of answered cross-node plays: 5,000 trivial plays through a gateway to a
// context another node owns, on a private redis-server whose used_memory and key count are read
// before, right after the last answer, and once every play's deadline has passed. A completed
// play keeps its completion record only until its gateway has read the answer, and nothing of a
// task outlives its deadline.

const SECRET = 'redis-memory-test-secret-0123456789'
const PLAYS = 5_000
const SOCKETS = 50
/** The aim of the issue: at most 300 bytes of Redis memory per answered play. */
const BYTES_PER_PLAY = 300
/** The deadline: the default 1 s run limit plus this allowance. */
const ALLOWANCE_MS = 10_000

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1])
}

/** The bytes of every key (MEMORY USAGE, every element counted): what Redis stores, without its buffers. */
async function stored(redis: Redis): Promise<number> {
  let bytes = 0
  for (const key of await keysUnder(redis, '')) bytes += (await redis.memory('USAGE', key, 'SAMPLES', 0)) ?? 0
  return bytes
}

t.test(`${PLAYS} answered cross-node plays leave at most ${BYTES_PER_PLAY} bytes each in Redis, and nothing past their deadlines`, { timeout: 110_000 }, async (t) => {
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const target = parseRedisTarget([server.url])
  const redisOptions = { target, secret: SECRET, queueAllowanceMs: ALLOWANCE_MS }
  const owner = await startNode(t, { policy: { run: 'authenticated', write: 'owner' }, redis: redisOptions })
  const front = await startNode(t, { redis: redisOptions })
  await owner.node.redis!.whenServing()
  await front.node.redis!.whenServing()
  const context = owner.circle.publicKey
  const storedAtStart = await stored(redis)
  const sockets = await Promise.all(
    Array.from({ length: SOCKETS }, async () => {
      const socket = await openSocket(`${front.url}${owner.circle.publicKey}`)
      await authenticate(socket, generateKeyPair())
      return socket
    }),
  )
  t.teardown(() => sockets.forEach((s) => s.close()))
  // One play on each socket first: the contexts, sockets and Redis connections are warm.
  for (const result of await Promise.all(sockets.map((s) => s.call('play', { script: '1 + 1' })))) t.equal(result.result?.result, 2)
  const keysBefore = await redis.dbsize()
  const before = await usedMemory(redis)

  let answered = 0
  let wrong = 0
  await Promise.all(
    sockets.map(async (socket) => {
      for (let i = 0; i < PLAYS / SOCKETS; i++) {
        const answer = await socket.call('play', { script: '1 + 1' }, undefined, 60_000)
        if (answer.result?.result === 2) answered++
        else wrong++
      }
    }),
  )
  // Every task was sent before this: its deadline is at most this far ahead.
  const latestDeadline = Date.now() + 1_000 + ALLOWANCE_MS
  t.equal(answered, PLAYS, `${PLAYS} plays answered (${wrong} not)`)
  const after = await usedMemory(redis)
  const keysAfter = await redis.dbsize()
  t.comment(`after ${PLAYS} plays: used_memory ${after - before >= 0 ? '+' : ''}${after - before} bytes (${((after - before) / PLAYS).toFixed(1)} per play), keys ${keysBefore} → ${keysAfter}`)
  t.ok(after - before <= BYTES_PER_PLAY * PLAYS, `Redis grew by at most ${BYTES_PER_PLAY} bytes per answered play`)
  t.ok(keysAfter - keysBefore <= SOCKETS, `at most one key per play in flight is left (${keysAfter - keysBefore} more)`)
  // Whatever is left (records read in the last turn, lists) expires by the latest deadline.
  const leases = new Set(['lease:', 'alive', 'secret-check'])
  for (const key of await keysUnder(redis, '')) {
    if ([...leases].some((part) => key.includes(part))) continue
    const expiry = Number(await redis.pexpiretime(key))
    // -2: deleted since the scan (a record its gateway read); -1: kept for ever.
    if (expiry === -1 || expiry > latestDeadline) t.fail(`${key} is kept past the deadlines (expiry ${expiry}, latest deadline ${latestDeadline})`)
  }

  // Once every deadline has passed (Redis's clock says so, and no key of a task is left), Redis
  // stores what it stored before the plays.
  const taskKeys = async () => (await keysUnder(redis, '')).filter((key) => key.includes(`{${context}}`) && !key.includes('lease:'))
  for (;;) {
    const [seconds, micros] = await redis.time()
    if (Number(seconds) * 1000 + Number(micros) / 1000 > latestDeadline && (await taskKeys()).length === 0) break
    await redis.blpop('never', 0.1)
  }
  const settled = await usedMemory(redis)
  const storedAtEnd = await stored(redis)
  t.comment(`after their deadlines: used_memory ${settled - before >= 0 ? '+' : ''}${settled - before} bytes, keys ${await redis.dbsize()}, stored ${storedAtStart} → ${storedAtEnd} bytes`)
  t.same(await taskKeys(), [], "no key of the context's tasks is left (queue, processing list, task hashes, records)")
  t.ok(storedAtEnd <= storedAtStart + 200, 'the keys left store what they stored before the plays (leases, alive keys, the check value)')
  t.ok(settled - before <= BYTES_PER_PLAY * PLAYS, `used_memory, buffers included, stays within ${BYTES_PER_PLAY} bytes per play of what it was`)
  t.equal(front.node.redis!.counters.expired, 0, 'no play expired')
})

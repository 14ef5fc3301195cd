/**
 * Pub/sub against streams for cross-node live updates (docs/cluster.md, "Live updates across
 * nodes"): what carrying one context's notices through Redis costs Redis, measured side by side
 * on a private redis-server. One publisher sends MESSAGES notices (the size of a `save_data`
 * notice with its MAC), in batches of BATCH per event-loop turn as the owner's relay does, to one
 * reader (a gateway):
 *
 *   pubsub   PUBLISH on the context's channel; the reader is SUBSCRIBEd
 *   stream   XADD MAXLEN ~ 1000 (what resumption needs: the owner's change log holds 1,000
 *            entries); the reader loops XREAD BLOCK from the last id it read
 *
 * Reports messages/s end to end, Redis CPU per message (INFO cpu) and the memory Redis holds
 * afterwards (INFO memory, against before).
 *
 *   npm run build --silent && node --no-node-snapshot dist/bench/live-transport.bench.js
 */
import { Redis } from 'ioredis'
import { startPrivateRedis } from './lib/private-redis.js'
import { machineInfo, table, writeResult, formatNumber } from './lib/report.js'

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 50_000)
const BATCH = 10
const TEXT = `${'A'.repeat(43)} ${JSON.stringify({ k: 'n', c: '02'.padEnd(66, 'a'), e: '0123456789abcdef', l: [[1, { type: 'changed', name: 'live/doc', op: 'save', value: JSON.stringify({ at: Date.now(), text: 'hello' }) }]] })}`

interface Figure {
  readonly messages_per_second: number
  readonly redis_cpu_us_per_message: number
  readonly redis_memory_held_bytes: number
}

async function info(redis: Redis): Promise<{ cpu: number; memory: number }> {
  const text = await redis.info()
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)![1])
  return { cpu: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6, memory: field('used_memory') }
}

async function measure(url: string, kind: 'pubsub' | 'stream'): Promise<Figure> {
  const admin = new Redis(url)
  const publisher = new Redis(url, { enableAutoPipelining: true })
  const reader = new Redis(url)
  // Subscribe once connected: a SUBSCRIBE queued before the connection's ready check breaks it.
  await new Promise((resolve) => reader.once('ready', resolve))
  const key = `bench:feed:{${kind}}`
  await admin.del(key)
  let received = 0
  let done!: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  let stop = false
  if (kind === 'pubsub') {
    reader.on('message', () => {
      if (++received === MESSAGES) done()
    })
    await reader.subscribe(key)
  }
  const readLoop = async () => {
    let last = '$'
    while (!stop) {
      const batch = (await reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null
      if (batch === null) continue
      const entries = batch[0]![1]
      last = entries.at(-1)![0]
      received += entries.length
      if (received >= MESSAGES) done()
    }
  }
  const reading = kind === 'stream' ? readLoop() : Promise.resolve()
  // The XREAD from '$' must be waiting before the first XADD.
  if (kind === 'stream') await new Promise((resolve) => setTimeout(resolve, 100))
  const before = await info(admin)
  const started = performance.now()
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    const turn: Promise<unknown>[] = []
    for (let i = 0; i < BATCH; i++) turn.push(kind === 'pubsub' ? publisher.publish(key, TEXT) : publisher.xadd(key, 'MAXLEN', '~', 1000, '*', 'm', TEXT))
    await Promise.all(turn)
  }
  await all
  const seconds = (performance.now() - started) / 1000
  stop = true
  await reading
  const after = await info(admin)
  await admin.del(key)
  for (const c of [admin, publisher, reader]) c.disconnect()
  return { messages_per_second: MESSAGES / seconds, redis_cpu_us_per_message: (after.cpu - before.cpu) / MESSAGES, redis_memory_held_bytes: after.memory - before.memory }
}

const redis = await startPrivateRedis()
const pubsub = await measure(redis.url, 'pubsub')
const stream = await measure(redis.url, 'stream')
await redis.stop()
console.log(
  table(
    [`${formatNumber(MESSAGES)} notices of ${TEXT.length} bytes, ${BATCH} per turn`, 'messages/s', 'Redis CPU µs/message', 'Redis memory held after (bytes)'],
    [
      ['pub/sub (PUBLISH, SUBSCRIBE)', pubsub.messages_per_second, pubsub.redis_cpu_us_per_message, pubsub.redis_memory_held_bytes],
      ['stream (XADD MAXLEN ~ 1000, XREAD BLOCK)', stream.messages_per_second, stream.redis_cpu_us_per_message, stream.redis_memory_held_bytes],
    ],
  ),
)
const path = writeResult('live-transport', { kind: 'live-transport', date: new Date().toISOString(), machine: machineInfo(), parameters: { messages: MESSAGES, batch: BATCH, message_bytes: TEXT.length }, pubsub, stream })
console.log(path)

/**
 * The anchor the cross-node rows are read against: BullMQ request/reply on the same Redis, in
 * the same run. One process per role, as the two Circles nodes are:
 *
 *   node bullmq.js worker '{"redisUrl","queue"}'        a Worker, concurrency 50, whose job
 *                                                       returns 1 + 1; prints {"ready":true,"pid"}
 *   node bullmq.js client '{"redisUrl","queue","loops","durationMs","warmupMs","processes"}'
 *        `loops` closed loops of queue.add (removeOnComplete) then waiting for the job's completed
 *        event (QueueEvents, as waitUntilFinished does, the waiter registered before the add):
 *        round trips/s and latency over the measured window, CPU per round trip of each process
 *        (all threads, from /proc) and of Redis (INFO cpu); prints one JSON line (a LoadResult)
 */
import { Queue, QueueEvents, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { redisCalls, redisCpuUs } from '../lib/redis-info.js'
import { sampleThreads } from '../lib/thread-cpu.js'
import type { LoadResult } from './load-generator.js'

interface Config {
  readonly redisUrl: string
  readonly queue: string
  readonly loops?: number
  readonly durationMs?: number
  readonly warmupMs?: number
  /** Processes by role whose CPU per round trip is read (the client adds itself as `load`). */
  readonly processes?: Record<string, number>
}

const role = process.argv[2]
const config = JSON.parse(process.argv[3] ?? '{}') as Config
const url = new URL(config.redisUrl)
const connection = { host: url.hostname, port: Number(url.port || 6379) }

function cpuNs(pids: Record<string, number>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [name, pid] of Object.entries(pids)) {
    let ns = 0
    for (const t of sampleThreads({ server: pid }).values()) ns += t.ns
    out.set(name, ns)
  }
  return out
}

if (role === 'worker') {
  const worker = new Worker(config.queue, async () => 1 + 1, { connection, concurrency: 50 })
  await worker.waitUntilReady()
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`)
  process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)))
} else {
  const queue = new Queue(config.queue, { connection })
  const events = new QueueEvents(config.queue, { connection })
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()])
  const loops = config.loops ?? 50
  const samples: number[] = []
  let recording = false
  let running = true
  let errors = 0
  let total = 0
  // What job.waitUntilFinished(events) does — wait for the job's `completed` (or `failed`) event —
  // with the waiter registered before the add: with removeOnComplete, waitUntilFinished loses the
  // race when the event comes before it listens (the job is gone: "missing key"), about 4% of
  // round trips at 50 loops.
  const waiters = new Map<string, (ok: boolean) => void>()
  events.on('completed', ({ jobId }) => waiters.get(jobId)?.(true))
  events.on('failed', ({ jobId }) => waiters.get(jobId)?.(false))
  let next = 0
  const loop = async () => {
    while (running) {
      const started = performance.now()
      const jobId = `${process.pid}-${next++}`
      const finished = new Promise<boolean>((resolve) => waiters.set(jobId, resolve))
      let ok = true
      try {
        await queue.add('play', { script: '1 + 1' }, { jobId, removeOnComplete: true, removeOnFail: true })
        ok = await finished
      } catch {
        ok = false
      }
      waiters.delete(jobId)
      total++
      if (!recording) continue
      if (ok) samples.push(performance.now() - started)
      else errors++
    }
  }
  const all = Array.from({ length: loops }, loop)
  await new Promise((r) => setTimeout(r, config.warmupMs ?? 1000))
  const redis = new Redis(config.redisUrl)
  const pids = { ...config.processes, load: process.pid }
  const redisBefore = await redisCpuUs(redis)
  const callsBefore = await redisCalls(redis)
  const before = cpuNs(pids)
  recording = true
  const started = performance.now()
  await new Promise((r) => setTimeout(r, config.durationMs ?? 5000))
  recording = false
  const after = cpuNs(pids)
  const redisAfter = await redisCpuUs(redis)
  const callsAfter = await redisCalls(redis)
  const seconds = (performance.now() - started) / 1000
  running = false
  // Loops still waiting now (an event never read) are reported, not waited for.
  const stuck = waiters.size
  void all
  const count = samples.length + errors
  const sorted = Float64Array.from(samples).sort()
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
  const per = (ns: number) => Math.round(ns / count / 10) / 100
  const processCpu: Record<string, number> = {}
  let sum = 0
  for (const [name, ns] of after) {
    const spent = ns - (before.get(name) ?? 0)
    sum += spent
    processCpu[name] = per(spent)
  }
  processCpu['all'] = per(sum)
  const result: LoadResult = {
    mode: 'play',
    connections: loops,
    requests: count,
    total_requests: total,
    errors,
    seconds,
    per_second: count / seconds,
    latency_ms: { p50: at(50), p90: at(90), p99: at(99), max: sorted[sorted.length - 1] ?? Number.NaN, mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length) },
    process_cpu_us: processCpu,
    redis_cpu_us: Math.round(((redisAfter - redisBefore) / count) * 100) / 100,
    redis_calls: { all: Math.round(((callsAfter.all - callsBefore.all) / count) * 1000) / 1000, scripts: Math.round(((callsAfter.scripts - callsBefore.scripts) / count) * 1000) / 1000 },
    codes: stuck > 0 ? { waiting_at_end: stuck } : {},
  }
  redis.disconnect()
  await Promise.all([queue.close(), events.close()])
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
}

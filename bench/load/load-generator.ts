/**
 * The load generator: a separate process from the server it measures. Takes a JSON config as
 * its only argument and prints one JSON result line on stdout.
 *
 * Modes (closed loop: each connection has one request outstanding):
 *   echo       requests to the bare echo server (ceiling A)
 *   play       authenticated `play` calls, one key per connection
 *   handshake  new connection + fetch_nonce + sign + authenticate, repeatedly
 *   bad-auth   new connection + fetch_nonce + a bad signature, repeatedly (a flood)
 *   idle       open N connections and hold them (prints {"open": N}, then waits for SIGTERM)
 *   live       one writer saving a document in a closed loop, or paced by `rate`
 *              (`slowSubscribers` sockets subscribe to it and never read); its latency
 *   watch      `subscribers` sockets subscribed to a live writer's documents (prints {"ready": N}
 *              once they are): notifications received per second, and latency from the
 *              write's commit (the script's Date.now(), whole ms) to receipt; measured from the
 *              first notification on, after the warm-up
 *   unread, junk, bomb   hostile neighbours (bench/load/hostile.ts): until SIGTERM, then one
 *              JSON line of what they did
 *
 * `play` with `rate` paces each connection (at most `rate` plays a second, one in flight): a
 * well-behaved client, whose latency is measured beside hostile ones.
 */
import { WebSocket } from 'ws'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../../src/identity/index.js'
import { Redis } from 'ioredis'
import { redisCalls, redisCpuUs } from '../lib/redis-info.js'
import { cpuPerRequest, sampleThreads, type CpuPerRequest, type MeasuredProcesses } from '../lib/thread-cpu.js'
import { HOSTILE_MODES, runHostile, type HostileMode } from './hostile.js'

export interface LoadConfig {
  readonly mode: 'echo' | 'play' | 'handshake' | 'bad-auth' | 'idle' | 'live' | 'watch' | HostileMode
  readonly url: string
  /** Connection i opens urls[i % urls.length] instead of url (e.g. many contexts through one node). */
  readonly urls?: readonly string[]
  readonly connections: number
  readonly durationMs: number
  readonly warmupMs?: number
  readonly script?: string
  /** Processes whose CPU per request, by thread, is read over the measured window (same machine). */
  readonly cpu?: MeasuredProcesses
  /**
   * Processes by role (pid, or several pids summed, e.g. a node and its sandbox hosts) whose CPU
   * per request, all threads, is read over the measured window; the load generator adds itself
   * as `load`.
   */
  readonly processes?: Record<string, number | readonly number[]>
  /** A Redis whose CPU (INFO cpu) per request is read over the measured window. */
  readonly redisUrl?: string
  /** `play`, `live`: requests a second per connection at most (paced); absent: as fast as answers come. */
  readonly rate?: number
  /** Connection i binds addresses[i % addresses.length] (loopback aliases: limits count per address). */
  readonly addresses?: readonly string[]
  /** watch: sockets subscribed to the writer's documents. */
  readonly subscribers?: number
  /** live: sockets that subscribe to the writer's documents and then stop reading. */
  readonly slowSubscribers?: number
}

export interface LoadResult {
  readonly mode: LoadConfig['mode']
  readonly connections: number
  readonly requests: number
  /** Answers received from the first request to the last, warm-up included (for CPU per request). */
  readonly total_requests: number
  readonly errors: number
  readonly seconds: number
  readonly per_second: number
  readonly latency_ms: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number }
  /** CPU µs per request by thread, over the same window (when `cpu` was given). */
  readonly cpu_us?: CpuPerRequest
  /** CPU µs per request by process role, all threads, over the same window (when `processes` was given); `all` sums every role, `load` included. */
  readonly process_cpu_us?: Record<string, number>
  /** Redis CPU µs per request over the same window (INFO cpu; when `redisUrl` was given). */
  readonly redis_cpu_us?: number
  /** Redis commands per request over the same window (INFO commandstats): all, and scripts among them. */
  readonly redis_calls?: { readonly all: number; readonly scripts: number }
  /** Error answers by `data.code` (play mode). */
  readonly codes: Record<string, number>
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig
const MAX_SAMPLES = 4_000_000
const samples = new Float64Array(MAX_SAMPLES)
let count = 0
let total = 0
let errors = 0
const codes: Record<string, number> = {}
let recording = false
let running = true

function record(latency: number, ok: boolean, answer?: Buffer): void {
  total++
  if (!recording) return
  if (!ok) {
    errors++
    const code = answer === undefined ? 'closed' : (/"code":"([A-Z_]+)"/.exec(answer.toString())?.[1] ?? 'unknown')
    codes[code] = (codes[code] ?? 0) + 1
  }
  if (count < MAX_SAMPLES) samples[count] = latency
  count++
}

function open(url: string, localAddress?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress === undefined ? {} : { localAddress }) })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** One request at a time on `ws`: send, wait for the next message. */
function exchange(ws: WebSocket, frame: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onMessage = (data: Buffer) => {
      ws.off('close', onClose)
      resolve(data.toString())
    }
    const onClose = () => {
      ws.off('message', onMessage)
      reject(new Error('closed'))
    }
    ws.once('message', onMessage)
    ws.once('close', onClose)
    ws.send(frame)
  })
}

function rpc(id: number, method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params })
}

async function authenticated(url: string, pair: KeyPair, localAddress?: string): Promise<WebSocket> {
  const ws = await open(url, localAddress)
  const nonce = JSON.parse(await exchange(ws, rpc(1, 'fetch_nonce', { pubkey: pair.publicKey }))) as { result: { nonce: string } }
  const auth = JSON.parse(await exchange(ws, rpc(2, 'authenticate', { pubkey: pair.publicKey, signature: signPersonalMessage(nonce.result.nonce, pair.secretKey) })))
  if (auth.result?.authenticated !== true) throw new Error(`authenticate failed: ${JSON.stringify(auth)}`)
  return ws
}

/**
 * One request outstanding on `ws` at a time, as fast as answers come: one listener per
 * connection for the whole run (per-request listeners would cost the generator more CPU than
 * the echo server spends answering).
 */
function closedLoop(ws: WebSocket, frame: string, rate?: number): Promise<void> {
  return new Promise((resolve) => {
    let started = 0
    /** When the next play is due (paced loops). */
    let due = performance.now()
    const send = () => {
      started = performance.now()
      ws.send(frame)
    }
    const fire = () => {
      if (!running) {
        ws.off('message', onMessage)
        resolve()
        return
      }
      if (rate === undefined) return send()
      // A slot missed while the last play waited is skipped, not made up in a burst: a stall
      // shows as one slow play (and fewer plays), as it would for a client keeping its pace.
      due = Math.max(due + 1000 / rate, performance.now())
      const wait = due - performance.now()
      if (wait <= 0) send()
      else setTimeout(send, wait)
    }
    const onMessage = (data: Buffer) => {
      const ok = data.includes('"result"')
      record(performance.now() - started, ok, ok ? undefined : data)
      fire()
    }
    ws.on('message', onMessage)
    ws.once('close', () => {
      if (running) record(performance.now() - started, false)
      resolve()
    })
    fire()
  })
}

async function handshakes(url: string, good: boolean): Promise<void> {
  const pair = generateKeyPair()
  const badSignature = `0x${'11'.repeat(32)}${'22'.repeat(32)}1b`
  while (running) {
    const started = performance.now()
    try {
      const ws = await open(url)
      const nonce = JSON.parse(await exchange(ws, rpc(1, 'fetch_nonce', { pubkey: pair.publicKey }))) as { result: { nonce: string } }
      const signature = good ? signPersonalMessage(nonce.result.nonce, pair.secretKey) : badSignature
      const answer = await exchange(ws, rpc(2, 'authenticate', { pubkey: pair.publicKey, signature }))
      record(performance.now() - started, good ? answer.includes('"authenticated":true') : answer.includes('INVALID_CREDENTIALS'))
      ws.close()
    } catch {
      record(performance.now() - started, false)
    }
  }
}

/** Subscribe `ws` to the live writer's documents; a reading one records each notification's delay from its commit. */
async function subscribe(ws: WebSocket, reading: boolean, first: () => void): Promise<void> {
  const answer = JSON.parse(await exchange(ws, rpc(3, 'subscribe', { prefix: 'live/' }))) as { result?: unknown }
  if (answer.result === undefined) throw new Error(`subscribe failed: ${JSON.stringify(answer)}`)
  if (!reading) {
    ;(ws as unknown as { _socket: { pause(): void } })._socket.pause()
    return
  }
  ws.on('message', (data: Buffer) => {
    const at = (JSON.parse(data.toString()) as { params: { value: { at: number } } }).params.value.at
    record(performance.timeOrigin + performance.now() - at, true)
    first()
  })
}

/** `count` authenticated sockets subscribed to the live writer's documents, 50 handshakes at a time. */
async function subscribers(count: number, reading: boolean, first: () => void = () => {}): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, async () => subscribe(await authenticated(config.url, generateKeyPair()), reading, first)))
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function main(): Promise<void> {
  const frame = rpc(1, 'play', { script: config.script ?? '1 + 1' })
  const loops: Promise<void>[] = []
  if ((HOSTILE_MODES as readonly string[]).includes(config.mode)) {
    process.stdout.write(`${JSON.stringify(await runHostile(config as LoadConfig & { mode: HostileMode }))}\n`)
    process.exit(0)
  }
  if (config.mode === 'idle') {
    const sockets: WebSocket[] = []
    for (let i = 0; i < config.connections; i += 100) {
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, config.connections - i) }, () => open(config.url)))))
    }
    process.stdout.write(`${JSON.stringify({ open: sockets.length })}\n`)
    process.on('SIGTERM', () => process.exit(0))
    await new Promise(() => {})
  }
  if (config.mode === 'live') {
    const writer = await authenticated(config.url, generateKeyPair())
    await subscribers(config.slowSubscribers ?? 0, false)
    loops.push(closedLoop(writer, rpc(1, 'play', { script: 'save_data("live/doc", { at: Date.now(), text: "hello" })' }), config.rate))
  } else if (config.mode === 'watch') {
    // Measured once the writer is writing: from its first notification on, after the warm-up.
    const writing = new Promise<void>((resolve) => subscribers(config.subscribers ?? 0, true, resolve).then(() => process.stdout.write(`${JSON.stringify({ ready: config.subscribers })}\n`)))
    await writing
  } else if (config.mode === 'echo' || config.mode === 'play') {
    const sockets: WebSocket[] = []
    const urlOf = (n: number) => (config.urls === undefined ? config.url : config.urls[n % config.urls.length]!)
    for (let i = 0; i < config.connections; i += 50) {
      const addressOf = (n: number) => (config.addresses === undefined ? undefined : config.addresses[n % config.addresses.length])
      const batch = Array.from({ length: Math.min(50, config.connections - i) }, (_, k) =>
        config.mode === 'echo' ? open(urlOf(i + k), addressOf(i + k)) : authenticated(urlOf(i + k), generateKeyPair(), addressOf(i + k)),
      )
      sockets.push(...(await Promise.all(batch)))
    }
    for (const ws of sockets) loops.push(closedLoop(ws, frame, config.rate))
  } else {
    for (let i = 0; i < config.connections; i++) loops.push(handshakes(config.url, config.mode === 'handshake'))
  }
  await new Promise((r) => setTimeout(r, config.warmupMs ?? 500))
  const redis = config.redisUrl === undefined ? undefined : new Redis(config.redisUrl, { maxRetriesPerRequest: 1 })
  const redisBefore = redis === undefined ? undefined : await redisCpuUs(redis)
  const callsBefore = redis === undefined ? undefined : await redisCalls(redis)
  const processesBefore = config.processes === undefined ? undefined : processNs(config.processes)
  const cpuBefore = config.cpu === undefined ? undefined : sampleThreads(config.cpu)
  recording = true
  const started = performance.now()
  await new Promise((r) => setTimeout(r, config.durationMs))
  recording = false
  const cpuAfter = config.cpu === undefined ? undefined : sampleThreads(config.cpu)
  const processesAfter = config.processes === undefined ? undefined : processNs(config.processes)
  const redisAfter = redis === undefined ? undefined : await redisCpuUs(redis)
  const callsAfter = redis === undefined ? undefined : await redisCalls(redis)
  redis?.disconnect()
  const seconds = (performance.now() - started) / 1000
  running = false
  const sorted = samples.slice(0, Math.min(count, MAX_SAMPLES)).sort()
  let sum = 0
  for (const v of sorted) sum += v
  const result: LoadResult = {
    mode: config.mode,
    connections: config.connections,
    requests: count,
    total_requests: total,
    errors,
    seconds,
    per_second: count / seconds,
    latency_ms: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
      mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    },
    ...(cpuBefore === undefined ? {} : { cpu_us: cpuPerRequest(cpuBefore, cpuAfter!, config.cpu!, count) }),
    ...(processesBefore === undefined ? {} : { process_cpu_us: perRequest(processesBefore, processesAfter!, count) }),
    ...(redisBefore === undefined ? {} : { redis_cpu_us: count > 0 ? Math.round(((redisAfter! - redisBefore) / count) * 100) / 100 : Number.NaN }),
    ...(callsBefore === undefined ? {} : { redis_calls: perCall(callsBefore, callsAfter!, count) }),
    codes,
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
}

function perCall(before: { all: number; scripts: number }, after: { all: number; scripts: number }, requests: number): { all: number; scripts: number } {
  const per = (n: number) => (requests > 0 ? Math.round((n / requests) * 1000) / 1000 : Number.NaN)
  return { all: per(after.all - before.all), scripts: per(after.scripts - before.scripts) }
}

/** Nanoseconds on CPU of each role's processes (all their threads), the load generator included as `load`. */
function processNs(roles: Record<string, number | readonly number[]>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [role, pids] of Object.entries({ ...roles, load: process.pid })) {
    let ns = 0
    for (const pid of typeof pids === 'number' ? [pids] : pids) for (const t of sampleThreads({ server: pid }).values()) ns += t.ns
    out.set(role, ns)
  }
  return out
}

function perRequest(before: Map<string, number>, after: Map<string, number>, requests: number): Record<string, number> {
  const out: Record<string, number> = {}
  const per = (ns: number) => (requests > 0 ? Math.round(ns / requests / 10) / 100 : Number.NaN)
  let all = 0
  for (const [role, ns] of after) {
    const spent = ns - (before.get(role) ?? 0)
    all += spent
    out[role] = per(spent)
  }
  out['all'] = per(all)
  return out
}

await main()

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
 */
import { WebSocket } from 'ws'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../../src/identity/index.js'

export interface LoadConfig {
  readonly mode: 'echo' | 'play' | 'handshake' | 'bad-auth' | 'idle'
  readonly url: string
  /** Connection i opens urls[i % urls.length] instead of url (e.g. many contexts through one node). */
  readonly urls?: readonly string[]
  readonly connections: number
  readonly durationMs: number
  readonly warmupMs?: number
  readonly script?: string
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
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig
const MAX_SAMPLES = 4_000_000
const samples = new Float64Array(MAX_SAMPLES)
let count = 0
let total = 0
let errors = 0
let recording = false
let running = true

function record(latency: number, ok: boolean): void {
  total++
  if (!recording) return
  if (!ok) errors++
  if (count < MAX_SAMPLES) samples[count] = latency
  count++
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
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

async function authenticated(url: string, pair: KeyPair): Promise<WebSocket> {
  const ws = await open(url)
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
function closedLoop(ws: WebSocket, frame: string): Promise<void> {
  return new Promise((resolve) => {
    let started = 0
    const fire = () => {
      if (!running) {
        ws.off('message', onMessage)
        resolve()
        return
      }
      started = performance.now()
      ws.send(frame)
    }
    const onMessage = (data: Buffer) => {
      record(performance.now() - started, data.includes('"result"'))
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

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function main(): Promise<void> {
  const frame = rpc(1, 'play', { script: config.script ?? '1 + 1' })
  const loops: Promise<void>[] = []
  if (config.mode === 'idle') {
    const sockets: WebSocket[] = []
    for (let i = 0; i < config.connections; i += 100) {
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, config.connections - i) }, () => open(config.url)))))
    }
    process.stdout.write(`${JSON.stringify({ open: sockets.length })}\n`)
    process.on('SIGTERM', () => process.exit(0))
    await new Promise(() => {})
  }
  if (config.mode === 'echo' || config.mode === 'play') {
    const sockets: WebSocket[] = []
    const urlOf = (n: number) => (config.urls === undefined ? config.url : config.urls[n % config.urls.length]!)
    for (let i = 0; i < config.connections; i += 50) {
      const batch = Array.from({ length: Math.min(50, config.connections - i) }, (_, k) =>
        config.mode === 'echo' ? open(urlOf(i + k)) : authenticated(urlOf(i + k), generateKeyPair()),
      )
      sockets.push(...(await Promise.all(batch)))
    }
    for (const ws of sockets) loops.push(closedLoop(ws, frame))
  } else {
    for (let i = 0; i < config.connections; i++) loops.push(handshakes(config.url, config.mode === 'handshake'))
  }
  await new Promise((r) => setTimeout(r, config.warmupMs ?? 500))
  recording = true
  const started = performance.now()
  await new Promise((r) => setTimeout(r, config.durationMs))
  recording = false
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
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
}

await main()

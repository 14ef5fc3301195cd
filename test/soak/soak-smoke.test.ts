import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/cli-process.js'
import { tsChildEnv } from '../helpers/ts-child.js'

/**
 * The soak (`npm run soak`), bounded: half a minute of the same mixed load against a launched
 * node, run as the operator runs it (the built `soak` script, its JSON read back). Too short to
 * judge memory growth — the full run does that — but long enough to hold every part of the mix
 * to what it must be answered, the node's figures to bounds, and the drain to a clean exit.
 */

/** Bounds every sample must keep: far above a healthy node, far below a leak or a stall. */
const MAX_NODE_RSS_BYTES = 512 * 2 ** 20
const MAX_HOSTS_RSS_BYTES = 1024 * 2 ** 20
const MAX_EVENT_LOOP_LAG_P99_MS = 1_000
const MAX_OPEN_HANDLES = 1_000

interface Sample {
  readonly elapsedMs: number
  readonly nodeRssBytes: number
  readonly hostsRssBytes: number
  readonly eventLoopLagP99Ms: number
  readonly openHandles: number
  readonly hostRestarts: number
  readonly escalations: number
}

interface SoakJson {
  readonly samples: Sample[]
  /** Host restarts once the load stopped and every host served again. */
  readonly hostRestarts: number
  readonly rssGrowthSecondHalfPercent: number
  readonly pass: boolean
  readonly answers: Record<string, Record<string, number>>
  readonly unexpected: Record<string, number>
  readonly log: { readonly errors: readonly string[] }
  readonly exitCode: number | null
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

t.test('soak smoke: 30 s of mixed load through `npm run soak`', { timeout: 120_000 }, async (t) => {
  const out = join(t.testdir(), 'soak.json')
  const args = ['--no-node-snapshot', join(ROOT, 'dist/bench/soak.js'), '--minutes', '0.5', '--sample-seconds', '5', '--bomb-every-seconds', '12', '--sandbox-processes', '1', '--out', out]
  const child = spawn(process.execPath, args, { cwd: ROOT, env: tsChildEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let printed = ''
  child.stdout.on('data', (c: Buffer) => (printed += c.toString()))
  child.stderr.on('data', (c: Buffer) => (printed += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  const result = JSON.parse(readFileSync(out, 'utf8')) as SoakJson
  t.equal(code, result.pass ? 0 : 1, 'the exit code is the verdict it wrote', { printed: printed.slice(-2000) })

  t.equal(result.samples.length, 6, 'a sample every 5 s')
  for (const s of result.samples) {
    t.ok(s.nodeRssBytes > 0 && s.nodeRssBytes < MAX_NODE_RSS_BYTES, `${s.elapsedMs} ms: node RSS ${s.nodeRssBytes} under ${MAX_NODE_RSS_BYTES}`)
    t.ok(s.hostsRssBytes > 0 && s.hostsRssBytes < MAX_HOSTS_RSS_BYTES, `${s.elapsedMs} ms: hosts RSS ${s.hostsRssBytes} under ${MAX_HOSTS_RSS_BYTES}`)
    t.ok(s.eventLoopLagP99Ms < MAX_EVENT_LOOP_LAG_P99_MS, `${s.elapsedMs} ms: event-loop lag p99 ${s.eventLoopLagP99Ms} ms under ${MAX_EVENT_LOOP_LAG_P99_MS}`)
    t.ok(s.openHandles > 0 && s.openHandles < MAX_OPEN_HANDLES, `${s.elapsedMs} ms: ${s.openHandles} open handles under ${MAX_OPEN_HANDLES}`)
    t.equal(s.escalations, 0, 'no supervisor gave up')
  }
  // The verdict as documented: the median of the last samples against those ending at the middle,
  // in percent to one decimal.
  const rss = result.samples.map((s) => s.nodeRssBytes)
  const window = Math.max(1, Math.min(3, Math.floor(rss.length / 4)))
  const middle = Math.floor(rss.length / 2)
  const base = median(rss.slice(middle - window, middle))
  t.equal(result.rssGrowthSecondHalfPercent, Math.round(((median(rss.slice(-window)) - base) / base) * 1000) / 10, 'its RSS verdict follows the documented rule')

  const a = result.answers
  t.same(Object.keys(a['good'] ?? {}), ['ok'], 'good clients got nothing but answers')
  t.ok((a['good']?.['ok'] ?? 0) >= 100, `good clients served (${a['good']?.['ok']} plays; at least 100)`)
  t.same(Object.keys(a['reconnect'] ?? {}), ['ok'], 'reconnecting clients got nothing but answers')
  t.ok((a['reconnect']?.['ok'] ?? 0) >= 10, `reconnecting clients served (${a['reconnect']?.['ok']}; at least 10)`)
  t.ok((a['writer']?.['ok'] ?? 0) >= 1 && (a['writer']?.['QUOTA_EXCEEDED'] ?? 0) >= 1, 'writers served and held to their quota')
  t.ok((a['flood']?.['INVALID_CREDENTIALS'] ?? 0) >= 10, `bad signatures refused (${a['flood']?.['INVALID_CREDENTIALS']}; at least 10)`)
  t.ok((a['hostile']?.['SCRIPT_TIMEOUT'] ?? 0) >= 1, 'hostile scripts stopped')
  const crashed = a['bomb']?.['WORKER_CRASHED'] ?? 0
  t.ok(crashed >= 1, `host-killing scripts answered WORKER_CRASHED (${crashed})`)
  t.ok(result.hostRestarts >= crashed, `a host restart for every host-killing script answered so (${result.hostRestarts})`)
  t.same(result.unexpected, {}, 'no class got an answer it should not')
  t.same(result.log.errors, [], 'nothing logged at error or fatal')
  t.equal(result.exitCode, 0, 'the node drained and exited 0')
})

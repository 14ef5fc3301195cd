import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { scrape, seriesOf, valueOf, type MetricFamily } from '../../src/metrics/exposition-text.js'
import { DEFAULT_MIX, LoadMix, type LoadMixOptions } from './load-mix.js'

/** The repository root, from this file in bench/soak (TypeScript) or dist/bench/soak (built). */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

export interface SoakOptions {
  readonly durationMs: number
  /** One sample (and one printed line) this often. */
  readonly sampleMs: number
  readonly mix?: Partial<LoadMixOptions>
  /** Sandbox host processes of the soaked node. */
  readonly sandboxProcesses?: number
  /** Called with each sample as it is taken. */
  readonly onSample?: (sample: SoakSample) => void
}

export interface SoakSample {
  readonly elapsedMs: number
  /** Resident memory of the node process and of its sandbox host processes (bytes). */
  readonly nodeRssBytes: number
  readonly hostsRssBytes: number
  readonly heapUsedBytes: number
  readonly eventLoopLagP99Ms: number
  readonly openHandles: number
  readonly connectionsOpen: number
  readonly hostPids: readonly number[]
  /** Play answers since the previous sample, by outcome code (from circles_play_duration_seconds_count). */
  readonly plays: Readonly<Record<string, number>>
  /** Authentications since the previous sample, by result. */
  readonly authentications: Readonly<Record<string, number>>
  readonly hostRestarts: number
  readonly escalations: number
}

export interface SoakResult {
  readonly samples: SoakSample[]
  /** Node RSS growth over the second half, in percent (see {@link rssGrowthSecondHalf}). */
  readonly rssGrowthSecondHalfPercent: number
  readonly pass: boolean
  readonly answers: Record<string, Record<string, number>>
  readonly unexpected: Record<string, number>
  /** The node's log: lines by level, and its error and fatal lines (at most 20). */
  readonly log: { readonly byLevel: Record<string, number>; readonly errors: readonly string[] }
  readonly exitCode: number | null
  /** Host restarts once the load stopped and every host was serving again (a crash answered last is restarted after its answer). */
  readonly hostRestarts: number
}

/** RSS growth over the second half allowed for a pass. */
export const MAX_RSS_GROWTH_PERCENT = 10

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) * 1024
  } catch {
    return 0
  }
}

function byLabel(families: Map<string, MetricFamily>, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of seriesOf(families, name)) out[s.labels[label] ?? ''] = s.value
  return out
}

function minus(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(now)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0)
  return out
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * Node RSS growth over the second half of a run, in percent: the median of the last few samples
 * against the median of the few that end at the middle. Medians, because one sample's RSS moves
 * with the garbage collector's timing by several percent; a leak moves all of them.
 */
export function rssGrowthSecondHalf(samples: readonly Pick<SoakSample, 'nodeRssBytes'>[]): number {
  if (samples.length < 2) return 0
  const window = Math.max(1, Math.min(3, Math.floor(samples.length / 4)))
  const middle = Math.floor(samples.length / 2)
  const base = median(samples.slice(Math.max(0, middle - window), middle).map((s) => s.nodeRssBytes))
  const end = median(samples.slice(-window).map((s) => s.nodeRssBytes))
  return ((end - base) / base) * 100
}

function sum(values: Iterable<number>): number {
  let n = 0
  for (const v of values) n += v
  return n
}

/**
 * A soak: launch the built `circles launch` with three circles (main, quota, bomb), run the
 * mixed load against it, sample the node's own figures (its admin /metrics) and the RSS of it
 * and its sandbox hosts, then drain it (SIGTERM) and judge: node RSS over the second half must
 * grow by less than {@link MAX_RSS_GROWTH_PERCENT} %.
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const root = repositoryRoot()
  const dir = mkdtempSync(join(tmpdir(), 'circles-soak-'))
  writeFileSync(
    join(dir, 'circles.json'),
    JSON.stringify([
      { name: 'main', port: 0, policy: { run: 'authenticated', write: 'authenticated' } },
      { name: 'quota', port: 0, policy: { run: 'authenticated', write: 'authenticated' }, limits: { max_document_bytes: 8_192, max_namespace_bytes: 65_536 } },
      { name: 'bomb', port: 0, policy: { run: 'authenticated', write: 'owner' }, limits: { memory_mb: 8, timeout_ms: 20_000, cpu_ms: 20_000 } },
    ]),
  )
  const env = { ...process.env }
  delete env['CIRCLES_TEST_FAULTS']
  delete env['CIRCLES_LOG_LEVEL']
  const args = ['--no-node-snapshot', join(root, 'dist/src/cli/main.js'), 'launch', '--config', join(dir, 'circles.json'), '--db-path', join(dir, 'db'), '--admin-port', '0']
  if (options.sandboxProcesses !== undefined) args.push('--sandbox-processes', String(options.sandboxProcesses))
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const byLevel: Record<string, number> = {}
  const errors: string[] = []
  const circles: Record<string, string> = {}
  let admin = ''
  let partial = ''
  const serving = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop()!
      for (const part of parts) {
        let line: { level: number; msg: string; [k: string]: unknown }
        try {
          line = JSON.parse(part)
        } catch {
          continue
        }
        const level = LEVELS[line.level] ?? String(line.level)
        byLevel[level] = (byLevel[level] ?? 0) + 1
        if (line.level >= 50 && errors.length < 20) errors.push(part.slice(0, 500))
        if (typeof line['circle'] === 'string' && typeof line['url'] === 'string') circles[line['circle']] = line['url']
        if (/^serving /.test(line.msg)) {
          admin = String(line['admin'])
          resolve()
        }
      }
    })
    void exited.then((code) => reject(new Error(`the node exited (${code}) before serving`)))
  })
  try {
    await serving
    const mix = new LoadMix({ main: circles['main']!, quota: circles['quota']!, bomb: circles['bomb']! }, { ...DEFAULT_MIX, ...options.mix })
    const samples: SoakSample[] = []
    const started = performance.now()
    let before = await scrape(admin)
    mix.start()
    for (let next = options.sampleMs; next <= options.durationMs; next += options.sampleMs) {
      const wait = started + next - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const now = await scrape(admin)
      const health = (await fetch(`${admin}/healthz`).then((r) => r.json())) as { hosts?: { pid: number }[] }
      const hostPids = (health.hosts ?? []).map((h) => h.pid).filter((pid) => pid > 0)
      const sample: SoakSample = {
        elapsedMs: Math.round(performance.now() - started),
        nodeRssBytes: valueOf(now, 'process_resident_memory_bytes'),
        hostsRssBytes: sum(hostPids.map(rssOf)),
        heapUsedBytes: valueOf(now, 'nodejs_heap_size_used_bytes'),
        eventLoopLagP99Ms: valueOf(now, 'nodejs_eventloop_lag_p99_seconds') * 1000,
        openHandles: valueOf(now, 'nodejs_active_handles_total'),
        connectionsOpen: valueOf(now, 'circles_connections_open'),
        hostPids,
        plays: minus(byLabel(now, 'circles_play_duration_seconds_count', 'code'), byLabel(before, 'circles_play_duration_seconds_count', 'code')),
        authentications: minus(byLabel(now, 'circles_authentications_total', 'result'), byLabel(before, 'circles_authentications_total', 'result')),
        hostRestarts: sum(Object.values(byLabel(now, 'circles_sandbox_host_restarts_total', 'host'))),
        escalations: sum(Object.values(byLabel(now, 'circles_supervisor_escalations_total', 'supervisor'))),
      }
      samples.push(sample)
      options.onSample?.(sample)
      before = now
    }
    await mix.stop()
    // A host that a crash answered last is replaced after its answer: wait until every host serves
    // again (/healthz says each host is up once its replacement is ready) before the final count.
    for (let looks = 0; ; looks++) {
      const health = (await fetch(`${admin}/healthz`).then((r) => r.json())) as { hosts?: { up: boolean }[] }
      if ((health.hosts ?? []).every((h) => h.up)) break
      if (looks === 600) throw new Error('soak: a sandbox host did not come back after the load stopped')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const hostRestarts = sum(Object.values(byLabel(await scrape(admin), 'circles_sandbox_host_restarts_total', 'host')))
    child.kill('SIGTERM')
    const exitCode = await exited
    const growth = rssGrowthSecondHalf(samples)
    const answers: Record<string, Record<string, number>> = {}
    for (const [cls, codes] of mix.answers) answers[cls] = Object.fromEntries(codes)
    return {
      samples,
      rssGrowthSecondHalfPercent: Math.round(growth * 10) / 10,
      pass: growth < MAX_RSS_GROWTH_PERCENT && exitCode === 0,
      answers,
      unexpected: mix.unexpected(),
      log: { byLevel, errors },
      exitCode,
      hostRestarts,
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
}

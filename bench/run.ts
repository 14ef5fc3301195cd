/**
 * The end-to-end benchmark: how close Circles comes to what this machine can do at all,
 * measured side by side in one run (shared machines are noisy; ratios are what is stable).
 *
 *   npm run bench                # full run (several minutes)
 *   npm run bench -- --quick     # CI-sized smoke run (about a minute)
 *   npm run bench -- --pin       # also the pinned rows: servers on core 0, load on core 1
 *   npm run bench -- --sandbox-processes 2
 *   npm run bench -- --auth-lag  # only: the node's event-loop lag while 1,000 sockets send bad signatures
 *   npm run bench -- --cross-node-only   # just the cross-node rows, plays and calls (Redis at $BENCH_REDIS_URL, else a private redis-server)
 *   npm run bench -- --hostile-only      # just the hostile-neighbours rows
 *   npm run bench -- --server-old-space-mb 256   # servers run with --max-old-space-size=256
 *   npm run bench -- --live-only         # just the live-update rows (one writer, 1,000 subscribers)
 *   npm run bench -- --live-cross-node-only   # live updates through another node (writer on B, 1,000 subscribers on A; Redis as for --cross-node-only)
 *
 * Servers and the load generator run in separate processes. Results: a table on stdout, a JSON
 * file and an SVG chart under bench/results/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createInterface, type Interface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { renderChart } from './lib/chart.js'
import { startPrivateRedis, type PrivateRedis } from './lib/private-redis.js'
import { redisMemory, type RedisMemory } from './lib/redis-info.js'
import { formatNumber, machineInfo, progress, progressDone, table, writeResult } from './lib/report.js'
import { callingScript, SCRIPTS } from './lib/scripts.js'
import type { EngineFigure } from './engine.bench.js'
import { measureSandbox, type SandboxFigure } from './sandbox.bench.js'
import type { LoadConfig, LoadResult } from './load/load-generator.js'
import type { CpuPerRequest, MeasuredProcesses } from './lib/thread-cpu.js'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const pin = argv.includes('--pin')
const authLagOnly = argv.includes('--auth-lag')
/** Sockets sending bad signatures at once while the node's event-loop lag is measured. */
const BAD_AUTH_SOCKETS = 1000
const onlyCrossNode = argv.includes('--cross-node-only')
const onlyHostile = argv.includes('--hostile-only')
const onlyLive = argv.includes('--live-only')
const onlyLiveCrossNode = argv.includes('--live-cross-node-only')
/** Sockets watching the writer's context in the live rows. */
const LIVE_SUBSCRIBERS = 1000
/** The paced live row: one write per this many ms (50 a second: 50,000 notifications a second). */
const LIVE_PACED_MS = 20
/** A Redis the operator names for the cross-node rows; without one the bench starts a private redis-server. */
const GIVEN_REDIS_URL = process.env['BENCH_REDIS_URL']
const sandboxProcesses = Number(argv[argv.indexOf('--sandbox-processes') + 1] ?? '') || 1
const PLAN = quick
  ? { connections: [1, 10, 50], durationMs: 1500, warmupMs: 300, idle: 2_000, contexts: 2_000, cold: 50, sandboxSeconds: 1, engineSeconds: 1, authMs: 1500, manyContexts: 50, hostileMs: 3_000 }
  : { connections: [1, 10, 50, 200], durationMs: 5000, warmupMs: 1000, idle: 5000, contexts: 100_000, cold: 200, sandboxSeconds: 3, engineSeconds: 3, authMs: 5000, manyContexts: 50, hostileMs: 10_000 }

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
// BENCH_CPU_PROF=<dir> profiles the servers (node --cpu-prof), e.g. to see where a cross-node task's time goes.
const CPU_PROF_DIR = process.env['BENCH_CPU_PROF']
const oldSpaceAt = argv.indexOf('--server-old-space-mb')
const SERVER_OLD_SPACE_MB = oldSpaceAt === -1 ? undefined : Number(argv[oldSpaceAt + 1])
const NODE_ARGS = [
  '--no-node-snapshot',
  ...(CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`]),
  ...(SERVER_OLD_SPACE_MB === undefined ? [] : [`--max-old-space-size=${SERVER_OLD_SPACE_MB}`]),
]
/** CPU pinning with taskset: servers on core 0, load generator on core 1 (when asked and possible). */
const canPin = pin && availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0
if (pin && !canPin) process.stderr.write('bench: --pin needs taskset and two cores; the pinned rows are skipped\n')
const SERVER_CORE = '0'
const LOAD_CORE = '1'

/** A command line, pinned to `core` when given. */
function command(args: readonly string[], core?: string): [string, string[]] {
  return core === undefined ? [process.execPath, [...args]] : ['taskset', ['-c', core, process.execPath, ...args]]
}

/** What a bench server prints once listening. */
interface ServerInfo {
  readonly url?: string
  readonly http?: string
  readonly circle?: string
  /** Contexts for the calls row: one whose scripts call, and the one they call. */
  readonly caller?: string
  readonly callee?: string
  readonly contexts?: string[]
  readonly pid?: number
  readonly host_pids?: number[]
}

interface Server {
  readonly child: ChildProcess
  readonly info: ServerInfo
  readonly lines: Interface
  command(value: unknown): Promise<Record<string, unknown>>
  stop(): Promise<void>
}

function startServer(file: string, env: Record<string, string> = {}, extraArgs: string[] = [], core?: string): Promise<Server> {
  const [cmd, args] = command([...NODE_ARGS, ...extraArgs, here(file)], core)
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const queue: ((line: string) => void)[] = []
  lines.on('line', (line) => queue.shift()?.(line))
  const nextLine = () => new Promise<string>((resolve) => queue.push(resolve))
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)))
    void nextLine().then((line) => {
      resolve({
        child,
        lines,
        info: JSON.parse(line) as Server['info'],
        async command(value) {
          child.stdin!.write(`${JSON.stringify(value)}\n`)
          return JSON.parse(await nextLine()) as Record<string, unknown>
        },
        stop: () =>
          new Promise<void>((done) => {
            child.removeAllListeners('exit')
            child.once('exit', () => done())
            child.kill('SIGTERM')
          }),
      })
    })
  })
}

function runJson<T>(args: readonly string[], core?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const [cmd, cmdArgs] = command(args, core)
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited with ${code}`))
      resolve(JSON.parse(out.trim().split('\n').pop()!) as T)
    })
  })
}

function load(config: LoadConfig, core?: string): Promise<LoadResult> {
  return runJson<LoadResult>([here('./load/load-generator.js'), JSON.stringify(config)], core)
}

function engine(script: keyof typeof SCRIPTS, cold: boolean, core?: string): Promise<EngineFigure> {
  return runJson<EngineFigure>([...NODE_ARGS, here('./engine.bench.js'), '--script', script, '--seconds', String(PLAN.engineSeconds), ...(cold ? ['--cold'] : [])], core)
}

/**
 * Subscribers in a load-generator process of their own (so that reading notifications does not
 * slow the writer's client): `ready` once they are subscribed, `result` once they have measured.
 */
function watch(config: LoadConfig): { ready: Promise<void>; result: Promise<LoadResult> } {
  const child = spawn(process.execPath, [here('./load/load-generator.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()))
  const result = new Promise<LoadResult>((resolve, reject) => {
    let last = ''
    lines.on('line', (line) => (last = line))
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(last) as LoadResult) : reject(new Error(`watching load generator exited with ${code}`))))
  })
  return { ready, result }
}

/** Start N idle connections in a load-generator process; resolves once they are all open. */
function holdIdle(url: string, connections: number): Promise<{ stop: () => void }> {
  return new Promise((resolve, reject) => {
    const config: LoadConfig = { mode: 'idle', url, connections, durationMs: 0 }
    const child = spawn(process.execPath, [here('./load/load-generator.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
    createInterface({ input: child.stdout }).once('line', () => resolve({ stop: () => child.kill('SIGTERM') }))
    child.once('exit', (code) => reject(new Error(`idle load generator exited with ${code}`)))
  })
}

/** The server's process and its sandbox hosts, whose CPU per request the load generator reads. */
function cpuOf(server: Server): MeasuredProcesses {
  return { server: server.info.pid ?? server.child.pid!, hosts: server.info.host_pids ?? [] }
}

/** The CPU-per-request table's columns, in µs. */
const CPU_COLUMNS: (keyof CpuPerRequest)[] = ['server_main', 'server_helpers', 'verifier', 'script', 'host_main', 'host_helpers', 'total']

function cpuRow(label: string, r: LoadResult): (string | number)[] {
  return [label, r.connections, ...CPU_COLUMNS.map((k) => (r.cpu_us === undefined ? '—' : r.cpu_us[k]))]
}

/** Start an attacker (a load-generator process in a hostile mode); resolves once it attacks. */
function startAttacker(config: LoadConfig): Promise<{ stop: () => Promise<Record<string, unknown>> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here('./load/load-generator.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = createInterface({ input: child.stdout })
    const onExit = (code: number | null) => reject(new Error(`${config.mode} attacker exited with ${code}`))
    child.once('exit', onExit)
    lines.once('line', () =>
      resolve({
        stop: () =>
          new Promise((done) => {
            child.off('exit', onExit)
            lines.once('line', (line) => done(JSON.parse(line) as Record<string, unknown>))
            child.kill('SIGTERM')
          }),
      }),
    )
  })
}

/** Loopback aliases for the hostile rows: limits count per address, so each client has its own. */
const alias = (n: number) => `127.0.0.${n}`
const HOSTILE_ATTACKS: readonly { readonly name: string; readonly config: Omit<LoadConfig, 'url'> }[] = [
  { name: '24 non-reading sockets (16 answers of 1 MB each)', config: { mode: 'unread', connections: 24, durationMs: 0, addresses: Array.from({ length: 24 }, (_, i) => alias(10 + i)) } },
  { name: 'one socket sending 1 MiB [[[…]]] frames', config: { mode: 'junk', connections: 1, durationMs: 0, addresses: [alias(40)] } },
  { name: 'one client sending memory bombs to the circle', config: { mode: 'bomb', connections: 1, durationMs: 0, addresses: [alias(50)] } },
]

export interface HostileRow {
  readonly attack: string
  readonly quiet: LoadResult
  readonly attacked: LoadResult
  readonly rss_before_bytes: number
  readonly rss_peak_bytes: number
  readonly attacker: Record<string, unknown>
}

/**
 * Hostile neighbours: a well-behaved client (authenticated, 200 plays a second on one socket)
 * measured quiet and then beside each attack, on a fresh node per attack (limits on for
 * loopback; every client on an address of its own).
 */
async function measureHostile(say: (what: string) => void): Promise<HostileRow[]> {
  const rows: HostileRow[] = []
  for (const attack of HOSTILE_ATTACKS) {
    say(`hostile neighbours: ${attack.name}`)
    const node = await startServer('./servers/circles-server.js', { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_HOSTILE: '1' })
    const url = node.info['url']!
    const victim: LoadConfig = { mode: 'play', url, connections: 1, rate: 200, addresses: [alias(2)], durationMs: PLAN.hostileMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial }
    const quiet = await load(victim)
    const before = (await node.command({ cmd: 'rss' })) as { rss: number }
    const attacker = await startAttacker({ ...attack.config, url })
    const attacked = await load(victim)
    const after = (await node.command({ cmd: 'rss' })) as { peak_rss: number }
    const report = await attacker.stop()
    await node.stop()
    rows.push({ attack: attack.name, quiet, attacked, rss_before_bytes: before.rss, rss_peak_bytes: after.peak_rss, attacker: report })
  }
  return rows
}

function hostileTable(rows: readonly HostileRow[]): string {
  const refused = (r: LoadResult) => `${r.codes['RATE_LIMITED'] ?? 0} of ${r.requests} (${(((r.codes['RATE_LIMITED'] ?? 0) / Math.max(1, r.requests)) * 100).toFixed(1)} %)`
  return table(
    ['beside', 'p50 ms quiet / attacked', '÷ quiet', 'p99 ms quiet / attacked', 'max ms quiet / attacked', 'node RSS growth MB', 'refused plays', 'other errors'],
    rows.map((r) => [
      r.attack,
      `${formatNumber(r.quiet.latency_ms.p50)} / ${formatNumber(r.attacked.latency_ms.p50)}`,
      `${(r.attacked.latency_ms.p50 / r.quiet.latency_ms.p50).toFixed(2)}×`,
      `${formatNumber(r.quiet.latency_ms.p99)} / ${formatNumber(r.attacked.latency_ms.p99)}`,
      `${formatNumber(r.quiet.latency_ms.max)} / ${formatNumber(r.attacked.latency_ms.max)}`,
      formatNumber(Math.max(0, r.rss_peak_bytes - r.rss_before_bytes) / 1e6),
      refused(r.attacked),
      String(r.attacked.errors - (r.attacked.codes['RATE_LIMITED'] ?? 0)),
    ]),
  )
}

async function hostileOnly(): Promise<void> {
  let step = 0
  const rows = await measureHostile((what) => progress(`[${++step}/${HOSTILE_ATTACKS.length}] ${what}`))
  progressDone()
  console.log(hostileTable(rows))
  for (const r of rows) console.log(`${r.attack}: ${JSON.stringify(r.attacker['counts'])}`)
  writeResult(quick ? 'bench-hostile-quick' : 'bench-hostile', {
    kind: 'hostile',
    quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: { ...PLAN, sandbox_processes: sandboxProcesses, server_old_space_mb: SERVER_OLD_SPACE_MB ?? null },
    hostile: rows,
  })
}

/** A load result with the CPU the server and its sandbox hosts spent per request, all threads (the load generator's window). */
type CpuLoadResult = LoadResult & { readonly cpu_us_per_request?: number }

/** Run a load against a Circles server, reading the CPU per request of its threads and its hosts' over the measured window. */
async function loadWithCpu(server: Server, config: LoadConfig, core?: string): Promise<CpuLoadResult> {
  const result = await load({ ...config, cpu: cpuOf(server) }, core)
  return result.cpu_us === undefined ? result : { ...result, cpu_us_per_request: result.cpu_us.total }
}

function row(label: string, r: CpuLoadResult, ceiling?: number): (string | number)[] {
  return [
    label,
    r.connections,
    r.per_second,
    ceiling === undefined ? '—' : `${(r.per_second / ceiling).toFixed(2)}×`,
    r.latency_ms.p50,
    r.latency_ms.p90,
    r.latency_ms.p99,
    r.latency_ms.max,
    r.cpu_us_per_request ?? '—',
    r.errors,
  ]
}

interface LagFigures {
  readonly quiet: Record<string, number>
  readonly flood: Record<string, number>
  readonly attempts: LoadResult
}

/** The node's event-loop lag, quiet and while BAD_AUTH_SOCKETS sockets send bad signatures in a loop. */
async function measureAuthLag(node: Server, url: string): Promise<LagFigures> {
  await node.command({ cmd: 'lag-reset' })
  await new Promise((resolve) => setTimeout(resolve, PLAN.authMs))
  const quiet = (await node.command({ cmd: 'lag' })) as Record<string, number>
  // Measured once the sockets are open and flooding (the load generator's warm-up), like its own figures.
  const running = load({ mode: 'bad-auth', url, connections: BAD_AUTH_SOCKETS, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs })
  await new Promise((resolve) => setTimeout(resolve, PLAN.warmupMs))
  await node.command({ cmd: 'lag-reset' })
  const attempts = await running
  const flood = (await node.command({ cmd: 'lag' })) as Record<string, number>
  return { quiet, flood, attempts }
}

async function authLag(): Promise<void> {
  progress(`event-loop lag: quiet, then ${BAD_AUTH_SOCKETS} sockets sending bad signatures`)
  const node = await startServer('./servers/circles-server.js', { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses) })
  const figures = await measureAuthLag(node, node.info['url']!)
  await node.stop()
  progressDone()
  console.log(
    table(
      ['figure', 'value'],
      [
        ['event-loop lag p99, quiet (ms)', formatNumber(figures.quiet['p99_ms']!)],
        [`event-loop lag p99, ${BAD_AUTH_SOCKETS} sockets sending bad signatures (ms)`, formatNumber(figures.flood['p99_ms']!)],
        ['event-loop lag max during the flood (ms)', formatNumber(figures.flood['max_ms']!)],
        ['bad authenticate attempts/s', formatNumber(figures.attempts.per_second)],
      ],
    ),
  )
  writeResult('bench-auth-lag', { kind: 'auth-lag', date: new Date().toISOString(), machine: machineInfo(), sockets: BAD_AUTH_SOCKETS, ...figures })
}

/** A cross-node or BullMQ row with what Redis kept once it was answered. */
type RedisLoadResult = LoadResult & {
  /** Redis used_memory and key count before the row and right after its last answer. */
  readonly redis_memory: { readonly before: RedisMemory; readonly after: RedisMemory }
  /** (used_memory after − before) ÷ answers of the row (warm-up included): what Redis keeps per answered play. */
  readonly redis_bytes_per_answer: number
}

interface CrossNodeFigures {
  readonly available: true
  /** BullMQ request/reply on the same Redis, just before the cross-node rows: the anchor. */
  readonly bullmq: RedisLoadResult
  /** The same, just after them (a shared machine's load moves within a run). */
  readonly bullmq_after: RedisLoadResult
  /** The mean of the two BullMQ rows' round trips/s: what the cross-node rows are divided by. */
  readonly bullmq_per_second: number
  /** Local play on the owner node, measured right before (the ratio's denominator). */
  readonly local: LoadResult
  readonly one_context: RedisLoadResult
  readonly fifty_contexts: RedisLoadResult
  readonly ratio_one_context: number
  readonly ratio_fifty_contexts: number
  /** A play whose script calls another context: on the owner node (both contexts there), then from node 1 to a context of node 2. */
  readonly call_local: LoadResult
  readonly call_cross_node: LoadResult
  readonly vs_bullmq_one_context: number
  readonly vs_bullmq_fifty_contexts: number
}

/** A BullMQ process (bench/load/bullmq.ts): a worker, ready once it prints; or the measuring client. */
function bullmq(role: 'worker', config: Record<string, unknown>): Promise<{ pid: number; stop: () => Promise<void> }>
function bullmq(role: 'client', config: Record<string, unknown>): Promise<LoadResult>
function bullmq(role: 'worker' | 'client', config: Record<string, unknown>): Promise<unknown> {
  if (role === 'client') return runJson<LoadResult>([here('./load/bullmq.js'), 'client', JSON.stringify(config)])
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here('./load/bullmq.js'), 'worker', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const onExit = (code: number | null) => reject(new Error(`bullmq worker exited with ${code}`))
    child.once('exit', onExit)
    createInterface({ input: child.stdout }).once('line', () => {
      child.off('exit', onExit)
      resolve({ pid: child.pid!, stop: () => new Promise<void>((done) => (child.once('exit', () => done()), child.kill('SIGTERM'))) })
    })
  })
}

/** Run `measure`, reading what Redis holds before and right after it. */
async function withRedisMemory(redis: Redis, measure: () => Promise<LoadResult>): Promise<RedisLoadResult> {
  const before = await redisMemory(redis)
  const result = await measure()
  const after = await redisMemory(redis)
  return { ...result, redis_memory: { before, after }, redis_bytes_per_answer: Math.round((after.used_memory - before.used_memory) / Math.max(1, result.total_requests)) }
}

/** The Redis of the cross-node rows: $BENCH_REDIS_URL's, or a private redis-server (`server`, to stop). */
async function benchRedis(): Promise<{ url: string; server?: PrivateRedis } | { reason: string }> {
  if (GIVEN_REDIS_URL !== undefined) return { url: GIVEN_REDIS_URL }
  try {
    const server = await startPrivateRedis()
    return { url: server.url, server }
  } catch (error) {
    return { reason: `no $BENCH_REDIS_URL, and no private redis-server: ${(error as Error).message}` }
  }
}

/**
 * Cross-node: two nodes joined through Redis; clients on node 1 (the gateway), contexts on node 2
 * (the owner) — one context for every connection, then 50 contexts (connection i → context
 * i mod 50) — and, for the ratios, the same load as local plays on node 2 and BullMQ
 * request/reply on the same Redis, before the cross-node rows and again after them (50 loops of
 * add, then the job's completed event; a Worker of concurrency 50 in a process of its own): the
 * cross-node rows are divided by the mean of the two. Every row reports CPU per answer by process (all threads) and
 * Redis's (INFO cpu), and what Redis keeps per answer (used_memory).
 */
async function measureCrossNode(say: (what: string) => void): Promise<CrossNodeFigures | { available: false; reason: string }> {
  const given = await benchRedis()
  if ('reason' in given) return { available: false, reason: given.reason }
  const { server, url: REDIS_URL } = given
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await redis.connect()
  } catch (error) {
    redis.disconnect()
    await server?.stop()
    return { available: false, reason: `no Redis at ${REDIS_URL}: ${(error as Error).message}` }
  }
  const prefix = `circles-bench:${process.pid}:`
  const redisPid: Record<string, number> = server === undefined ? {} : { redis: server.pid }
  const queueName = `circles-bench-bullmq-${process.pid}`
  const measureBullmq = async () => {
    const worker = await bullmq('worker', { redisUrl: REDIS_URL, queue: queueName })
    const result = await withRedisMemory(redis, () =>
      bullmq('client', { redisUrl: REDIS_URL, queue: queueName, loops: 50, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, processes: { worker: worker.pid, ...redisPid } }),
    )
    await worker.stop()
    await deleteUnder(redis, `bull:${queueName}:`)
    return result
  }
  say('cross-node: BullMQ request/reply on the same Redis, 50 loops (the anchor, before the cross-node rows)')
  const bull = await measureBullmq()
  const env = { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_PREFIX: prefix }
  const owner = await startServer('./servers/circles-server.js', { ...env, BENCH_CONTEXTS: '50' })
  const front = await startServer('./servers/circles-server.js', env)
  const via = (key: string) => `${front.info['url']!}${key}`
  const common = { mode: 'play', connections: 50, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial } as const
  const roles: Record<string, number | number[]> = {
    gateway: [front.info.pid ?? front.child.pid!, ...(front.info.host_pids ?? [])],
    owner: owner.info.pid ?? owner.child.pid!,
    owner_hosts: owner.info.host_pids ?? [],
    ...redisPid,
  }
  const measured = { processes: roles, redisUrl: REDIS_URL }
  say('cross-node: local play on the owner node, 50 connections (for the ratio)')
  const local = await loadWithCpu(owner, { ...common, url: owner.info['url']!, processes: roles })
  say('cross-node: 1 context on node 2, clients on node 1, 50 connections')
  const one = await withRedisMemory(redis, () => load({ ...common, url: via(owner.info['circle']!), ...measured }))
  say('cross-node: 50 contexts on node 2, clients on node 1, 50 connections')
  const contexts = owner.info.contexts ?? []
  const fifty = await withRedisMemory(redis, () => load({ ...common, url: via(contexts[0]!), urls: contexts.map(via), ...measured }))
  // Calls: a play in a context whose script calls another (two runs and a call per request).
  say('cross-node: a play that calls another context, both on node 2, 50 connections')
  const callLocal = await load({ ...common, ...measured, url: `${owner.info['url']!}${owner.info['caller']!}`, script: callingScript(owner.info['callee']!) })
  say('cross-node: a play on node 1 that calls a context of node 2, 50 connections')
  const callCross = await load({ ...common, ...measured, url: via(front.info['caller']!), script: callingScript(owner.info['callee']!) })
  await front.stop()
  await owner.stop()
  await deleteUnder(redis, prefix)
  say('cross-node: BullMQ request/reply again, after the cross-node rows')
  const bullAfter = await measureBullmq()
  const bullPerSecond = (bull.per_second + bullAfter.per_second) / 2
  redis.disconnect()
  await server?.stop()
  return {
    available: true,
    bullmq: bull,
    bullmq_after: bullAfter,
    bullmq_per_second: bullPerSecond,
    local,
    one_context: one,
    fifty_contexts: fifty,
    ratio_one_context: one.per_second / local.per_second,
    ratio_fifty_contexts: fifty.per_second / local.per_second,
    vs_bullmq_one_context: one.per_second / bullPerSecond,
    vs_bullmq_fifty_contexts: fifty.per_second / bullPerSecond,
    call_local: callLocal,
    call_cross_node: callCross,
  }
}

async function deleteUnder(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}

/** The cross-node table: throughput beside BullMQ, latency, CPU per answer by process, what Redis keeps. */
function crossNodeTable(cross: CrossNodeFigures): string {
  const cpu = (r: LoadResult, role: string) => (r.process_cpu_us?.[role] === undefined ? '—' : formatNumber(r.process_cpu_us[role]))
  const line = (label: string, r: LoadResult, ratio: string, memory?: RedisLoadResult): (string | number)[] => [
    label,
    formatNumber(r.per_second),
    ratio,
    formatNumber(r.latency_ms.p50),
    formatNumber(r.latency_ms.p99),
    r.redis_cpu_us === undefined ? '—' : formatNumber(r.redis_cpu_us),
    r.redis_calls === undefined ? '—' : `${r.redis_calls.all.toFixed(2)} (${r.redis_calls.scripts.toFixed(2)})`,
    memory === undefined ? '—' : `${formatNumber(memory.redis_bytes_per_answer)} (${memory.redis_memory.after.keys - memory.redis_memory.before.keys} keys)`,
    r.process_cpu_us === undefined ? '—' : Object.entries(r.process_cpu_us).filter(([k]) => k !== 'all').map(([k, v]) => `${k} ${formatNumber(v)}`).join(', '),
    cpu(r, 'all'),
    r.errors,
  ]
  return table(
    ['run (50 connections, trivial)', 'answers/s', '÷ BullMQ (mean of both rows)', 'p50 ms', 'p99 ms', 'Redis CPU µs/answer', 'Redis commands/answer (scripts)', 'Redis bytes kept/answer', 'CPU µs/answer by process', 'all processes µs', 'errors'],
    [
      line('BullMQ request/reply (anchor), before', cross.bullmq, `${(cross.bullmq.per_second / cross.bullmq_per_second).toFixed(2)}×`, cross.bullmq),
      line('local play on the owner node', cross.local, '—'),
      line('cross-node, 1 context', cross.one_context, `${cross.vs_bullmq_one_context.toFixed(2)}×`, cross.one_context),
      line('cross-node, 50 contexts', cross.fifty_contexts, `${cross.vs_bullmq_fifty_contexts.toFixed(2)}×`, cross.fifty_contexts),
      line('a play that calls, both contexts on node 2', cross.call_local, '—'),
      line('a play on node 1 that calls node 2', cross.call_cross_node, `${(cross.call_cross_node.per_second / cross.bullmq_per_second).toFixed(2)}×`),
      line('BullMQ request/reply (anchor), after', cross.bullmq_after, `${(cross.bullmq_after.per_second / cross.bullmq_per_second).toFixed(2)}×`, cross.bullmq_after),
    ],
  )
}

async function crossNodeOnly(): Promise<void> {
  let step = 0
  const cross = await measureCrossNode((what) => progress(`[${++step}/7] ${what}`))
  progressDone()
  if (!cross.available) {
    console.log(`cross-node: not measured (${cross.reason})`)
    return
  }
  console.log(crossNodeTable(cross))
  writeResult(quick ? 'bench-cross-node-quick' : 'bench-cross-node', { kind: 'cross-node', quick, date: new Date().toISOString(), machine: machineInfo(), parameters: { ...PLAN, sandbox_processes: sandboxProcesses }, cross_node: cross })
}

interface LiveRows {
  /** The writer alone: what its plays cost without anyone watching. */
  readonly alone: LoadResult
  /** The writer while LIVE_SUBSCRIBERS watch its context. */
  readonly watched: LoadResult
  /** The subscribers: notifications received/s, and latency from commit to receipt. */
  readonly subscribers: LoadResult
  /** The same with the writer paced (LIVE_PACED_MS between writes): latency while the subscribers keep up. */
  readonly paced: LoadResult
  /** The writer with one subscriber that never reads. */
  readonly slow: LoadResult
  readonly writer_p50_watched_vs_alone: number
  readonly writer_p50_slow_vs_alone: number
}

/**
 * Live updates: one writer saving a document in a closed loop on a context of its own, alone,
 * then with LIVE_SUBSCRIBERS sockets watching it (notifications/s delivered, commit → receipt),
 * then with one subscriber that never reads (its p50 against the writer's alone).
 */
async function measureLive(node: Server, say: (what: string) => void): Promise<LiveRows> {
  const timed = { durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, connections: 1 }
  const board = async () => ((await node.command({ cmd: 'board' })) as { url: string }).url
  say('live: one writer, nobody watching')
  const alone = await loadWithCpu(node, { mode: 'live', url: await board(), ...timed })
  say(`live: one writer, ${LIVE_SUBSCRIBERS} subscribers`)
  const url = await board()
  const watching = watch({ mode: 'watch', url, ...timed, connections: LIVE_SUBSCRIBERS, subscribers: LIVE_SUBSCRIBERS })
  await watching.ready
  // The subscribers measure from the writer's first notification on: it writes a little longer.
  const watched = await loadWithCpu(node, { mode: 'live', url, ...timed, durationMs: timed.durationMs + 500 })
  const subscribers = await watching.result
  say(`live: one writer every ${LIVE_PACED_MS} ms, ${LIVE_SUBSCRIBERS} subscribers`)
  const pacedUrl = await board()
  const pacing = watch({ mode: 'watch', url: pacedUrl, ...timed, connections: LIVE_SUBSCRIBERS, subscribers: LIVE_SUBSCRIBERS })
  await pacing.ready
  await load({ mode: 'live', url: pacedUrl, ...timed, durationMs: timed.durationMs + 500, rate: 1000 / LIVE_PACED_MS })
  const paced = await pacing.result
  say('live: one writer, one subscriber that does not read')
  const slow = await load({ mode: 'live', url: await board(), ...timed, slowSubscribers: 1 })
  return {
    alone,
    watched,
    subscribers,
    paced,
    slow,
    writer_p50_watched_vs_alone: watched.latency_ms.p50 / alone.latency_ms.p50,
    writer_p50_slow_vs_alone: slow.latency_ms.p50 / alone.latency_ms.p50,
  }
}

function liveTable(live: LiveRows): string {
  const n = live.subscribers.connections
  const { p50, p99, max } = live.subscribers.latency_ms
  return table(
    ['live updates (one writer, save_data in a closed loop)', 'value'],
    [
      ['writer alone: plays/s, p50 / p99 ms', `${formatNumber(live.alone.per_second)}, ${formatNumber(live.alone.latency_ms.p50)} / ${formatNumber(live.alone.latency_ms.p99)}`],
      [`writer with ${n} subscribers: plays/s, p50 / p99 ms`, `${formatNumber(live.watched.per_second)}, ${formatNumber(live.watched.latency_ms.p50)} / ${formatNumber(live.watched.latency_ms.p99)}`],
      [`notifications delivered/s (${n} subscribers)`, formatNumber(live.subscribers.per_second)],
      ['commit → receipt p50 / p99 / max ms (commit time in whole ms; receivers saturated)', `${formatNumber(p50)} / ${formatNumber(p99)} / ${formatNumber(max)}`],
      [
        `writer paced to one save per ${LIVE_PACED_MS} ms: notifications/s, commit → receipt p50 / p99 ms`,
        `${formatNumber(live.paced.per_second)}, ${formatNumber(live.paced.latency_ms.p50)} / ${formatNumber(live.paced.latency_ms.p99)}`,
      ],
      [`writer p50 with ${n} subscribers ÷ alone`, `${live.writer_p50_watched_vs_alone.toFixed(2)}×`],
      [
        `node main thread CPU per write: alone / with ${n} subscribers (µs)`,
        `${formatNumber(live.alone.cpu_us?.server_main ?? Number.NaN)} / ${formatNumber(live.watched.cpu_us?.server_main ?? Number.NaN)}`,
      ],
      [
        'node main thread CPU per notification sent (µs)',
        formatNumber(((live.watched.cpu_us?.server_main ?? Number.NaN) - (live.alone.cpu_us?.server_main ?? Number.NaN)) / n),
      ],
      ['writer p50 with a subscriber that does not read ÷ alone', `${live.writer_p50_slow_vs_alone.toFixed(2)}×`],
    ],
  )
}

async function liveOnly(): Promise<void> {
  let step = 0
  const node = await startServer('./servers/circles-server.js', { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses) })
  const live = await measureLive(node, (what) => progress(`[${++step}/4] ${what}`))
  await node.stop()
  progressDone()
  console.log(liveTable(live))
  writeResult(quick ? 'bench-live-quick' : 'bench-live', { kind: 'live', quick, date: new Date().toISOString(), machine: machineInfo(), parameters: { ...PLAN, sandbox_processes: sandboxProcesses, subscribers: LIVE_SUBSCRIBERS }, live })
}

/** What INFO says of Redis's CPU (µs, user + sys), memory, and its PUBLISH calls so far. */
async function redisInfo(redis: Redis): Promise<{ cpu_us: number; used_memory: number; publish_calls: number; publish_usec: number }> {
  const text = await redis.info('all')
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)?.[1] ?? 0)
  const publish = /^cmdstat_publish:calls=(\d+),usec=(\d+)/m.exec(text)
  return {
    cpu_us: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    used_memory: field('used_memory'),
    publish_calls: Number(publish?.[1] ?? 0),
    publish_usec: Number(publish?.[2] ?? 0),
  }
}

interface LiveCrossNodeRow {
  /** The writer on node B (the owner), writing in a closed loop while the subscribers watch through node A. */
  readonly writer: LoadResult
  /** The LIVE_SUBSCRIBERS subscribers on node A: notifications/s received, commit → receipt. */
  readonly subscribers: LoadResult
  /** The same with the writer paced (LIVE_PACED_MS between writes): latency while the subscribers keep up. */
  readonly paced: LoadResult
  /** Redis over the writer's run (warm-up included): CPU, PUBLISH calls, memory before and after. */
  readonly redis: {
    readonly cpu_us: number
    readonly publish_calls: number
    readonly publish_usec: number
    readonly cpu_us_per_publish: number
    readonly cpu_us_per_notification_received: number
    readonly used_memory_before: number
    readonly used_memory_after: number
  }
}

/**
 * Live updates through another node: the writer saves in a closed loop on a context node B
 * hosts, connected to B; LIVE_SUBSCRIBERS sockets watch it through node A (the gateway). Redis
 * carries one message per turn of B's event loop to A, whatever the number of subscribers.
 */
async function measureLiveCrossNode(say: (what: string) => void): Promise<LiveCrossNodeRow | { available: false; reason: string }> {
  const given = await benchRedis()
  if ('reason' in given) return { available: false, reason: given.reason }
  const { server, url: REDIS_URL } = given
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 0 })
  const prefix = `circles-bench:${process.pid}:`
  const env = { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_PREFIX: prefix }
  const owner = await startServer('./servers/circles-server.js', env)
  const front = await startServer('./servers/circles-server.js', env)
  const board = ((await owner.command({ cmd: 'board' })) as { url: string }).url
  const key = board.slice(board.lastIndexOf('/') + 1)
  const timed = { durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, connections: 1 }
  say(`live through another node: one writer on B, ${LIVE_SUBSCRIBERS} subscribers on A`)
  const watching = watch({ mode: 'watch', url: `${front.info['url']!}${key}`, ...timed, connections: LIVE_SUBSCRIBERS, subscribers: LIVE_SUBSCRIBERS })
  await watching.ready
  const before = await redisInfo(redis)
  const writer = await load({ mode: 'live', url: board, ...timed, durationMs: timed.durationMs + 500 })
  const after = await redisInfo(redis)
  const subscribers = await watching.result
  say(`live through another node: one writer on B every ${LIVE_PACED_MS} ms, ${LIVE_SUBSCRIBERS} subscribers on A`)
  const pacedBoard = ((await owner.command({ cmd: 'board' })) as { url: string }).url
  const pacing = watch({ mode: 'watch', url: `${front.info['url']!}${pacedBoard.slice(pacedBoard.lastIndexOf('/') + 1)}`, ...timed, connections: LIVE_SUBSCRIBERS, subscribers: LIVE_SUBSCRIBERS })
  await pacing.ready
  await load({ mode: 'live', url: pacedBoard, ...timed, durationMs: timed.durationMs + 500, rate: 1000 / LIVE_PACED_MS })
  const paced = await pacing.result
  await front.stop()
  await owner.stop()
  redis.disconnect()
  await server?.stop()
  const cpu = after.cpu_us - before.cpu_us
  const publishes = after.publish_calls - before.publish_calls
  return {
    writer,
    subscribers,
    paced,
    redis: {
      cpu_us: cpu,
      publish_calls: publishes,
      publish_usec: after.publish_usec - before.publish_usec,
      cpu_us_per_publish: cpu / publishes,
      // Notifications received over the writer's whole run, warm-up included (as the CPU is).
      cpu_us_per_notification_received: cpu / (writer.total_requests * LIVE_SUBSCRIBERS),
      used_memory_before: before.used_memory,
      used_memory_after: after.used_memory,
    },
  }
}

async function liveCrossNodeOnly(): Promise<void> {
  let step = 0
  const row = await measureLiveCrossNode((what) => progress(`[${++step}/2] ${what}`))
  progressDone()
  if ('available' in row) {
    console.log(`live through another node: not measured (${row.reason})`)
    return
  }
  const { p50, p99, max } = row.subscribers.latency_ms
  console.log(
    table(
      [`live through another node (writer on B, ${row.subscribers.connections} subscribers on A)`, 'value'],
      [
        ['writer on B: plays/s, p50 / p99 ms', `${formatNumber(row.writer.per_second)}, ${formatNumber(row.writer.latency_ms.p50)} / ${formatNumber(row.writer.latency_ms.p99)}`],
        ['notifications received/s on A', formatNumber(row.subscribers.per_second)],
        ['commit → receipt p50 / p99 / max ms (receivers saturated)', `${formatNumber(p50)} / ${formatNumber(p99)} / ${formatNumber(max)}`],
        [
          `writer paced to one save per ${LIVE_PACED_MS} ms: notifications/s, commit → receipt p50 / p99 ms`,
          `${formatNumber(row.paced.per_second)}, ${formatNumber(row.paced.latency_ms.p50)} / ${formatNumber(row.paced.latency_ms.p99)}`,
        ],
        ['Redis PUBLISH calls (writer run, warm-up included)', formatNumber(row.redis.publish_calls)],
        ['Redis time in PUBLISH per call (commandstats, µs)', formatNumber(row.redis.publish_usec / row.redis.publish_calls)],
        ['Redis CPU (all of it, INFO cpu) per PUBLISH / per notification received (µs)', `${formatNumber(row.redis.cpu_us_per_publish)} / ${formatNumber(row.redis.cpu_us_per_notification_received)}`],
        ['Redis used_memory before / after (bytes)', `${formatNumber(row.redis.used_memory_before)} / ${formatNumber(row.redis.used_memory_after)}`],
      ],
    ),
  )
  writeResult(quick ? 'bench-live-cross-node-quick' : 'bench-live-cross-node', {
    kind: 'live-cross-node',
    quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: { ...PLAN, sandbox_processes: sandboxProcesses, subscribers: LIVE_SUBSCRIBERS },
    live_cross_node: row,
  })
}

async function main(): Promise<void> {
  if (authLagOnly) return authLag()
  const started = performance.now()
  const steps = PLAN.connections.length * 3 + 22 + HOSTILE_ATTACKS.length + (canPin ? 5 : 0)
  let step = 0
  const say = (what: string) => progress(`[${++step}/${steps}] ${what}`)
  const timed = (connections: number, script: string = SCRIPTS.trivial) => ({ connections, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script })
  const nodeEnv = (isolation: 'process' | 'thread' = 'process') => ({ BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_SANDBOX_ISOLATION: isolation })

  // Ceiling A: bare ws JSON-RPC echo.
  const echo = await startServer('./servers/echo-server.js')
  const ceilingA: LoadResult[] = []
  for (const connections of PLAN.connections) {
    say(`ceiling A (ws echo), ${connections} connections`)
    ceilingA.push(await load({ mode: 'echo', url: echo.info['url']!, ...timed(connections), cpu: cpuOf(echo) }))
  }
  await echo.stop()

  // The engine alone on one thread, and the sandbox pool alone (no network).
  say('engine alone: one isolate on one thread, warm and with every script text new')
  const engines: EngineFigure[] = []
  for (const script of ['trivial', 'small'] as const) for (const cold of [false, true]) engines.push(await engine(script, cold))
  say('ceiling B (sandbox pool alone)')
  const ceilingB: SandboxFigure[] = []
  for (const script of ['trivial', 'small'] as const) ceilingB.push(await measureSandbox(sandboxProcesses, script, PLAN.sandboxSeconds))

  // Circles local.
  const node = await startServer('./servers/circles-server.js', nodeEnv(), ['--expose-gc'])
  const url = node.info['url']!
  const local: Record<'trivial' | 'small', CpuLoadResult[]> = { trivial: [], small: [] }
  for (const script of ['trivial', 'small'] as const) {
    for (const connections of PLAN.connections) {
      say(`Circles local, ${script} script, ${connections} connections`)
      local[script].push(await loadWithCpu(node, { mode: 'play', url, ...timed(connections, SCRIPTS[script]) }))
    }
  }
  // A play whose script calls another context of the node: each request is two runs and a call.
  say('Circles local, a play that calls another context, 50 connections')
  const calls = await loadWithCpu(node, { mode: 'play', url: `${url}${node.info['caller']!}`, ...timed(50, callingScript(node.info['callee']!)) })
  say(`Circles local, ${PLAN.manyContexts} connections to ${PLAN.manyContexts} different contexts`)
  const { urls } = (await node.command({ cmd: 'urls', count: PLAN.manyContexts })) as { urls: string[] }
  const manyContexts = await loadWithCpu(node, { mode: 'play', url, urls, ...timed(PLAN.manyContexts) })
  const live = await measureLive(node, say)

  // Auth under load.
  say('auth: handshakes/s')
  const handshakes = await load({ mode: 'handshake', url, connections: 8, durationMs: PLAN.authMs, warmupMs: 300 })
  say('auth: play p99 quiet vs. during a bad-signature flood')
  const quiet = await load({ mode: 'play', url, connections: 50, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial })
  const [flooded, flood] = await Promise.all([
    load({ mode: 'play', url, connections: 50, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial }),
    load({ mode: 'bad-auth', url, connections: 20, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs }),
  ])

  say(`auth: event-loop lag while ${BAD_AUTH_SOCKETS} sockets send bad signatures`)
  const lag = await measureAuthLag(node, url)

  // Footprint.
  say(`footprint: ${PLAN.idle} idle connections`)
  // Memory is read after a full GC as V8 heap used + off-heap buffers ("held"): RSS alone
  // mostly shows what earlier phases left the allocator holding, not what these objects cost.
  const beforeIdle = (await node.command({ cmd: 'memory' })) as Record<string, number>
  const idle = await holdIdle(url, PLAN.idle)
  const withIdle = (await node.command({ cmd: 'memory' })) as Record<string, number>
  idle.stop()
  say(`footprint: ${PLAN.contexts} passivated contexts, time to a cold context's first answer, active contexts`)
  const beforeContexts = (await node.command({ cmd: 'memory' })) as Record<string, number>
  const spawnStarted = performance.now()
  const spawned = (await node.command({ cmd: 'spawn', count: PLAN.contexts })) as Record<string, number>
  const spawnSeconds = (performance.now() - spawnStarted) / 1000
  const cold = (await node.command({ cmd: 'cold', count: PLAN.cold })) as Record<string, number>
  const activeCount = Math.min(PLAN.contexts, 10_000)
  const beforeActive = (await node.command({ cmd: 'memory' })) as Record<string, number>
  const activated = (await node.command({ cmd: 'activate', count: activeCount })) as Record<string, number>
  await node.stop()

  // The same node with in-process sandbox hosts ('thread' isolation): what process isolation costs.
  say('Circles local, thread isolation, trivial script, 50 connections')
  const threadNode = await startServer('./servers/circles-server.js', nodeEnv('thread'))
  const threadIsolation = await loadWithCpu(threadNode, { mode: 'play', url: threadNode.info['url']!, ...timed(50) })
  await threadNode.stop()

  // Pinned: every server process on one core, the load generator on the other. The one-core
  // limit of the path is what the echo and one warm run cost on that core.
  let pinned: Record<string, unknown> | undefined
  if (canPin) {
    say('pinned: ceiling A (ws echo) on one core, 50 connections')
    const pinnedEcho = await startServer('./servers/echo-server.js', {}, [], SERVER_CORE)
    const echoPinned = await load({ mode: 'echo', url: pinnedEcho.info['url']!, ...timed(50), cpu: cpuOf(pinnedEcho) }, LOAD_CORE)
    await pinnedEcho.stop()
    say('pinned: the engine alone on that core')
    const enginePinned = await engine('trivial', false, SERVER_CORE)
    const limit = 1 / (1 / echoPinned.per_second + 1 / enginePinned.runs_per_second)
    const rows: Record<string, CpuLoadResult> = {}
    for (const isolation of ['process', 'thread'] as const) {
      say(`pinned: Circles, ${isolation} isolation, trivial script, 50 connections`)
      const n = await startServer('./servers/circles-server.js', nodeEnv(isolation), [], SERVER_CORE)
      rows[isolation] = await loadWithCpu(n, { mode: 'play', url: n.info['url']!, ...timed(50) }, LOAD_CORE)
      if (isolation === 'process') {
        say('pinned: Circles, process isolation, ~1 KB script, 50 connections')
        rows['small'] = await loadWithCpu(n, { mode: 'play', url: n.info['url']!, ...timed(50, SCRIPTS.small) }, LOAD_CORE)
      }
      await n.stop()
    }
    pinned = {
      echo: echoPinned,
      engine: enginePinned,
      one_core_limit_per_second: limit,
      process: rows['process'],
      thread: rows['thread'],
      small: rows['small'],
      process_vs_limit: rows['process']!.per_second / limit,
      thread_vs_limit: rows['thread']!.per_second / limit,
    }
  }

  const cross = await measureCrossNode(say)
  const hostile = await measureHostile(say)
  progressDone()

  const per = (after: Record<string, number>, before: Record<string, number>, n: number, key: 'held' | 'rss') => (after[key]! - before[key]!) / n
  const footprint = {
    idle_connections: PLAN.idle,
    bytes_per_idle_connection: per(withIdle, beforeIdle, PLAN.idle, 'held'),
    rss_bytes_per_idle_connection: per(withIdle, beforeIdle, PLAN.idle, 'rss'),
    contexts: PLAN.contexts,
    spawn_seconds: spawnSeconds,
    bytes_per_passivated_context: per(spawned, beforeContexts, PLAN.contexts, 'held'),
    rss_after_contexts_bytes: spawned['rss'],
    cold_first_answer_ms: { p50: cold['p50_ms'], p99: cold['p99_ms'], samples: cold['samples'] },
    active_contexts: activeCount,
    bytes_per_active_context: per(activated, beforeActive, activeCount, 'held'),
    rss_bytes_per_active_context: per(activated, beforeActive, activeCount, 'rss'),
    active_after_activation: activated['active'],
  }
  const at = (list: LoadResult[], c: number) => list.find((r) => r.connections === c)
  const a50 = at(ceilingA, 50)!
  const l50 = at(local.trivial, 50)!
  const warm = (script: string) => engines.find((e) => e.script === script && !e.cold)!
  const coldRun = (script: string) => engines.find((e) => e.script === script && e.cold)!
  const summary = {
    local_vs_ceiling_a_at_50: l50.per_second / a50.per_second,
    local_p99_ms_at_50: l50.latency_ms.p99,
    local_cpu_us_at_50: l50.cpu_us ?? null,
    echo_cpu_us_at_50: a50.cpu_us ?? null,
    many_contexts_vs_ceiling_a: manyContexts.per_second / a50.per_second,
    calls_per_second_at_50: calls.per_second,
    call_vs_play_at_50: calls.per_second / l50.per_second,
    thread_vs_ceiling_a: threadIsolation.per_second / a50.per_second,
    local_vs_ceiling_b: l50.per_second / ceilingB[0]!.runs_per_second,
    compile_cache_speedup_small: warm('small').runs_per_second / coldRun('small').runs_per_second,
    handshakes_per_second: handshakes.per_second,
    play_p99_quiet_ms: quiet.latency_ms.p99,
    play_p99_during_flood_ms: flooded.latency_ms.p99,
    flood_p99_ratio: flooded.latency_ms.p99 / quiet.latency_ms.p99,
    bad_authentications_per_second: flood.per_second,
    event_loop_lag_p99_quiet_ms: lag.quiet['p99_ms'],
    event_loop_lag_p99_bad_auth_ms: lag.flood['p99_ms'],
    bad_auth_sockets: BAD_AUTH_SOCKETS,
    ...(pinned === undefined
      ? {}
      : {
          pinned_one_core_limit: pinned['one_core_limit_per_second'],
          pinned_process_vs_limit: pinned['process_vs_limit'],
          pinned_thread_vs_limit: pinned['thread_vs_limit'],
          pinned_process_p99_ms: (pinned['process'] as LoadResult).latency_ms.p99,
        }),
  }
  const results = {
    kind: 'end-to-end',
    quick,
    pinned_requested: pin,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: { ...PLAN, sandbox_processes: sandboxProcesses, scripts: SCRIPTS },
    ceiling_a: ceilingA,
    engine: engines,
    ceiling_b: ceilingB,
    local,
    local_many_contexts: manyContexts,
    local_calls: calls,
    local_thread_isolation: threadIsolation,
    pinned: pinned ?? null,
    cross_node: cross,
    live,
    auth: { handshakes, quiet, flooded, flood, lag },
    hostile,
    footprint,
    summary,
    seconds: (performance.now() - started) / 1000,
  }

  const headers = ['run', 'conns', 'req/s', '÷ ceiling A', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'CPU µs/req', 'errors']
  const rows: (string | number)[][] = []
  for (const r of ceilingA) rows.push(row('ceiling A: ws echo', r))
  for (const script of ['trivial', 'small'] as const) {
    for (const r of local[script]) rows.push(row(`Circles local, ${script}`, r, at(ceilingA, r.connections)?.per_second))
  }
  rows.push(row('Circles, a play that calls another context', calls, a50.per_second))
  rows.push(row(`Circles, ${PLAN.manyContexts} contexts, trivial`, manyContexts, a50.per_second))
  rows.push(row('Circles, thread isolation, trivial', threadIsolation, a50.per_second))
  rows.push(row('play, quiet', quiet, a50.per_second))
  rows.push(row('play, bad-auth flood', flooded, a50.per_second))
  if (cross.available) {
    rows.push(row('local play on the cross-node owner', cross.local, a50.per_second))
    rows.push(row('cross-node, 1 context', cross.one_context, a50.per_second))
    rows.push(row('cross-node, 50 contexts', cross.fifty_contexts, a50.per_second))
    rows.push(row('a play that calls, both contexts on the owner', cross.call_local, a50.per_second))
    rows.push(row('cross-node call: a play on node 1 that calls node 2', cross.call_cross_node, a50.per_second))
  }
  console.log(table(headers, rows))
  console.log('')
  if (cross.available) {
    console.log(crossNodeTable(cross))
    console.log('')
  }
  const cpuRows: (string | number)[][] = [
    ...ceilingA.map((r) => cpuRow('ceiling A: ws echo', r)),
    ...local.trivial.map((r) => cpuRow('Circles local, trivial', r)),
    ...local.small.map((r) => cpuRow('Circles local, ~1 KB', r)),
    cpuRow(`Circles, ${PLAN.manyContexts} contexts, trivial`, manyContexts),
    cpuRow('Circles, thread isolation, trivial', threadIsolation),
  ]
  if (pinned !== undefined) {
    cpuRows.push(cpuRow('pinned: ws echo', pinned['echo'] as LoadResult))
    cpuRows.push(cpuRow('pinned: Circles, process isolation', pinned['process'] as LoadResult))
    cpuRows.push(cpuRow('pinned: Circles, thread isolation', pinned['thread'] as LoadResult))
    cpuRows.push(cpuRow('pinned: Circles, ~1 KB', pinned['small'] as LoadResult))
  }
  console.log(table(['CPU µs per request, by thread', 'conns', ...CPU_COLUMNS], cpuRows))
  console.log('')
  console.log(liveTable(live))
  if (pinned !== undefined) {
    const limit = pinned['one_core_limit_per_second'] as number
    console.log('')
    console.log(
      table(
        ['pinned (servers on core 0, load on core 1)', 'conns', 'req/s', '÷ one-core limit', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'CPU µs/req', 'errors'],
        [
          row('ceiling A: ws echo', pinned['echo'] as LoadResult),
          row('Circles, process isolation, trivial', pinned['process'] as LoadResult, limit),
          row('Circles, thread isolation, trivial', pinned['thread'] as LoadResult, limit),
          row('Circles, process isolation, ~1 KB', pinned['small'] as LoadResult),
        ],
      ),
    )
    console.log(`one-core limit: ${formatNumber(limit)} req/s = 1 / (echo ${formatNumber(1e6 / (pinned['echo'] as LoadResult).per_second)} µs + engine ${formatNumber((pinned['engine'] as EngineFigure).us_per_run)} µs)`)
  }
  console.log('')
  console.log(
    table(
      ['figure', 'value'],
      [
        ...engines.map((e): [string, string] => [`engine alone, ${e.script}${e.cold ? ', every text new (no compile cache)' : ''} (runs/s)`, formatNumber(e.runs_per_second)]),
        ...ceilingB.map((b): [string, string] => [`ceiling B: sandbox pool alone, ${b.script} (runs/s; CPU µs/run)`, `${formatNumber(b.runs_per_second)}; ${formatNumber(b.cpu_us_per_run)}`]),
        ['Circles local ÷ ceiling A at 50 connections', `${summary.local_vs_ceiling_a_at_50.toFixed(2)}×`],
        ['Circles local p99 at 50 connections (ms)', formatNumber(summary.local_p99_ms_at_50)],
        ['calls/s at 50 connections (a play that calls another context)', formatNumber(calls.per_second)],
        ['p50 / p99 of a play that calls, beside a plain play, 50 connections (ms)', `${formatNumber(calls.latency_ms.p50)} / ${formatNumber(calls.latency_ms.p99)} beside ${formatNumber(l50.latency_ms.p50)} / ${formatNumber(l50.latency_ms.p99)}`],
        ['~1 KB script: warm ÷ every text new (what compiled-script caching buys)', `${summary.compile_cache_speedup_small.toFixed(2)}×`],
        ['handshakes/s (fetch_nonce + sign + authenticate, 8 loops)', formatNumber(handshakes.per_second)],
        ['play p99 during bad-signature flood ÷ quiet', `${summary.flood_p99_ratio.toFixed(2)}×`],
        ['bad authenticate attempts/s during the flood', formatNumber(flood.per_second)],
        [`node event-loop lag p99: quiet / ${BAD_AUTH_SOCKETS} sockets sending bad signatures (ms)`, `${formatNumber(lag.quiet['p99_ms']!)} / ${formatNumber(lag.flood['p99_ms']!)}`],
        [`memory per idle connection (bytes, heap + buffers, ${PLAN.idle} open)`, formatNumber(footprint.bytes_per_idle_connection)],
        [`memory per passivated context (bytes, ${PLAN.contexts} registered)`, formatNumber(footprint.bytes_per_passivated_context)],
        [`node RSS with ${PLAN.contexts} contexts registered (MB)`, formatNumber((footprint.rss_after_contexts_bytes ?? 0) / 1e6)],
        [`time to a passivated context's first answer, p50 / p99 (ms)`, `${formatNumber(footprint.cold_first_answer_ms.p50 ?? Number.NaN)} / ${formatNumber(footprint.cold_first_answer_ms.p99 ?? Number.NaN)}`],
        [`memory per active context (bytes, ${activeCount} with a live actor)`, formatNumber(footprint.bytes_per_active_context)],
        ...(cross.available
          ? [
              ['cross-node ÷ local play (same run, 50 connections), 1 context', `${cross.ratio_one_context.toFixed(2)}×`] as [string, string],
              ['cross-node ÷ local play (same run, 50 connections), 50 contexts', `${cross.ratio_fifty_contexts.toFixed(2)}×`] as [string, string],
              [
                'cross-node calls/s, p50 / p99 (ms), beside a call on one node (50 connections)',
                `${formatNumber(cross.call_cross_node.per_second)}, ${formatNumber(cross.call_cross_node.latency_ms.p50)} / ${formatNumber(cross.call_cross_node.latency_ms.p99)} beside ${formatNumber(cross.call_local.per_second)}, ${formatNumber(cross.call_local.latency_ms.p50)} / ${formatNumber(cross.call_local.latency_ms.p99)}`,
              ] as [string, string],
              ['cross-node ÷ BullMQ request/reply (same run, same Redis), 1 / 50 contexts', `${cross.vs_bullmq_one_context.toFixed(2)}× / ${cross.vs_bullmq_fifty_contexts.toFixed(2)}×`] as [string, string],
            ]
          : [['cross-node', `not measured: ${cross.reason}`] as [string, string]]),
      ],
    ),
  )
  console.log('')
  console.log(hostileTable(hostile))
  const path = writeResult(quick ? 'bench-quick' : 'bench', results)
  const svg = renderChart([
    {
      title: 'Throughput',
      yLabel: 'requests/s',
      series: [
        { name: 'ceiling A: ws echo', points: ceilingA.map((r) => [r.connections, r.per_second]) },
        { name: 'Circles, trivial script', points: local.trivial.map((r) => [r.connections, r.per_second]) },
        { name: 'Circles, ~1 KB script', points: local.small.map((r) => [r.connections, r.per_second]) },
      ],
    },
    {
      title: 'Latency p99',
      yLabel: 'ms',
      series: [
        { name: 'ceiling A: ws echo', points: ceilingA.map((r) => [r.connections, r.latency_ms.p99]) },
        { name: 'Circles, trivial script', points: local.trivial.map((r) => [r.connections, r.latency_ms.p99]) },
        { name: 'Circles, ~1 KB script', points: local.small.map((r) => [r.connections, r.latency_ms.p99]) },
      ],
    },
  ])
  const chartPath = path.replace(/\.json$/, '.svg')
  writeFileSync(chartPath, svg)
  console.log(`\nresults: ${path}\nchart:   ${chartPath}\n(${((performance.now() - started) / 1000).toFixed(0)} s)`)
}

await (onlyCrossNode ? crossNodeOnly() : onlyHostile ? hostileOnly() : onlyLive ? liveOnly() : onlyLiveCrossNode ? liveCrossNodeOnly() : main())

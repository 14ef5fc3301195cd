/**
 * The end-to-end benchmark: how close Circles comes to what this machine can do at all,
 * measured side by side in one run (shared machines are noisy; ratios are what is stable).
 *
 *   npm run bench                # full run (a few minutes)
 *   npm run bench -- --quick     # CI-sized smoke run (under a minute)
 *   npm run bench -- --sandbox-processes 2
 *   npm run bench -- --cross-node-only   # just the cross-node rows (Redis at $BENCH_REDIS_URL or 127.0.0.1:6379)
 *
 * Servers and the load generator run in separate processes. Results: a table on stdout, a JSON
 * file and an SVG chart under bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createInterface, type Interface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { renderChart } from './lib/chart.js'
import { formatNumber, machineInfo, progress, progressDone, table, writeResult } from './lib/report.js'
import { SCRIPTS } from './lib/scripts.js'
import { measureSandbox, type SandboxFigure } from './sandbox.bench.js'
import type { LoadConfig, LoadResult } from './load/load-generator.js'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const onlyCrossNode = argv.includes('--cross-node-only')
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const sandboxProcesses = Number(argv[argv.indexOf('--sandbox-processes') + 1] ?? '') || 1
const PLAN = quick
  ? { connections: [1, 10, 50], durationMs: 1500, warmupMs: 300, idle: 500, contexts: 1000, sandboxSeconds: 1, authMs: 1500 }
  : { connections: [1, 10, 50, 200], durationMs: 5000, warmupMs: 1000, idle: 5000, contexts: 10000, sandboxSeconds: 3, authMs: 5000 }

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
// BENCH_CPU_PROF=<dir> profiles the servers (node --cpu-prof), e.g. to see where a cross-node task's time goes.
const CPU_PROF_DIR = process.env['BENCH_CPU_PROF']
const NODE_ARGS = ['--no-node-snapshot', ...(CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`])]

interface Server {
  readonly child: ChildProcess
  readonly info: Record<string, string> & { contexts?: string[] }
  readonly lines: Interface
  command(value: unknown): Promise<Record<string, number>>
  stop(): Promise<void>
}

function startServer(file: string, env: Record<string, string> = {}, extraArgs: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [...NODE_ARGS, ...extraArgs, here(file)], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
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
          return JSON.parse(await nextLine()) as Record<string, number>
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

function load(config: LoadConfig): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here('./load/load-generator.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`))
      resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult)
    })
  })
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

async function scrapeRss(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text()
  return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? Number.NaN)
}

function row(label: string, r: LoadResult, ceiling?: number): (string | number)[] {
  return [
    label,
    r.connections,
    r.per_second,
    ceiling === undefined ? '—' : `${(r.per_second / ceiling).toFixed(2)}×`,
    r.latency_ms.p50,
    r.latency_ms.p90,
    r.latency_ms.p99,
    r.latency_ms.max,
    r.errors,
  ]
}

interface CrossNodeFigures {
  readonly available: true
  /** Local play on the owner node, measured right before (the ratio's denominator). */
  readonly local: LoadResult
  readonly one_context: LoadResult
  readonly fifty_contexts: LoadResult
  readonly ratio_one_context: number
  readonly ratio_fifty_contexts: number
}

/**
 * Cross-node: two nodes joined through Redis; clients on node 1 (the gateway), contexts on node 2
 * (the owner) — one context for every connection, then 50 contexts (connection i → context
 * i mod 50) — and, for the ratio, the same load as local plays on node 2.
 */
async function measureCrossNode(say: (what: string) => void): Promise<CrossNodeFigures | { available: false; reason: string }> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await redis.connect()
  } catch (error) {
    redis.disconnect()
    return { available: false, reason: `no Redis at ${REDIS_URL}: ${(error as Error).message}` }
  }
  const prefix = `circles-bench:${process.pid}:`
  const env = { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_PREFIX: prefix }
  const owner = await startServer('./servers/circles-server.js', { ...env, BENCH_CONTEXTS: '50' })
  const front = await startServer('./servers/circles-server.js', env)
  const via = (key: string) => `${front.info['url']!}${key}`
  const common = { mode: 'play', connections: 50, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial } as const
  say('cross-node: local play on the owner node, 50 connections (for the ratio)')
  const local = await load({ ...common, url: owner.info['url']! })
  say('cross-node: 1 context on node 2, clients on node 1, 50 connections')
  const one = await load({ ...common, url: via(owner.info['circle']!) })
  say('cross-node: 50 contexts on node 2, clients on node 1, 50 connections')
  const contexts = owner.info.contexts ?? []
  const fifty = await load({ ...common, url: via(contexts[0]!), urls: contexts.map(via) })
  await front.stop()
  await owner.stop()
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
  redis.disconnect()
  return {
    available: true,
    local,
    one_context: one,
    fifty_contexts: fifty,
    ratio_one_context: one.per_second / local.per_second,
    ratio_fifty_contexts: fifty.per_second / local.per_second,
  }
}

async function crossNodeOnly(): Promise<void> {
  let step = 0
  const cross = await measureCrossNode((what) => progress(`[${++step}/3] ${what}`))
  progressDone()
  if (!cross.available) {
    console.log(`cross-node: not measured (${cross.reason})`)
    return
  }
  const headers = ['run', 'conns', 'req/s', '÷ local', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors']
  console.log(
    table(headers, [
      row('local play on the owner node', cross.local),
      row('cross-node, 1 context', cross.one_context, cross.local.per_second),
      row('cross-node, 50 contexts', cross.fifty_contexts, cross.local.per_second),
    ]),
  )
  writeResult(quick ? 'bench-cross-node-quick' : 'bench-cross-node', { kind: 'cross-node', quick, date: new Date().toISOString(), machine: machineInfo(), parameters: { ...PLAN, sandbox_processes: sandboxProcesses }, cross_node: cross })
}

async function main(): Promise<void> {
  const started = performance.now()
  const results: Record<string, unknown> = {}
  const steps = PLAN.connections.length * 3 + 10
  let step = 0
  const say = (what: string) => progress(`[${++step}/${steps}] ${what}`)

  // Ceiling A: bare ws JSON-RPC echo.
  const echo = await startServer('./servers/echo-server.js')
  const ceilingA: LoadResult[] = []
  for (const connections of PLAN.connections) {
    say(`ceiling A (ws echo), ${connections} connections`)
    ceilingA.push(await load({ mode: 'echo', url: echo.info['url']!, connections, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial }))
  }
  await echo.stop()

  // Ceiling B: the sandbox pool alone, no network.
  say('ceiling B (sandbox pool alone)')
  const ceilingB: SandboxFigure[] = []
  for (const script of ['trivial', 'small'] as const) ceilingB.push(await measureSandbox(sandboxProcesses, script, PLAN.sandboxSeconds))

  // Circles local.
  const node = await startServer('./servers/circles-server.js', { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses) }, ['--expose-gc'])
  const url = node.info['url']!
  const local: Record<'trivial' | 'small', LoadResult[]> = { trivial: [], small: [] }
  for (const script of ['trivial', 'small'] as const) {
    for (const connections of PLAN.connections) {
      say(`Circles local, ${script} script, ${connections} connections`)
      local[script].push(await load({ mode: 'play', url, connections, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script: SCRIPTS[script] }))
    }
  }

  // Auth under load.
  say('auth: handshakes/s')
  const handshakes = await load({ mode: 'handshake', url, connections: 8, durationMs: PLAN.authMs, warmupMs: 300 })
  say('auth: play p99 quiet vs. during a bad-signature flood')
  const quiet = await load({ mode: 'play', url, connections: 50, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial })
  const [flooded, flood] = await Promise.all([
    load({ mode: 'play', url, connections: 50, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial }),
    load({ mode: 'bad-auth', url, connections: 20, durationMs: PLAN.authMs, warmupMs: PLAN.warmupMs }),
  ])

  // Footprint.
  say(`footprint: ${PLAN.idle} idle connections`)
  const http = node.info['http']!
  // Memory is read after a full GC as V8 heap used + off-heap buffers ("held"): RSS alone
  // mostly shows what earlier phases left the allocator holding, not what these objects cost.
  const beforeIdle = await node.command({ cmd: 'memory' })
  const idle = await holdIdle(url, PLAN.idle)
  const withIdle = await node.command({ cmd: 'memory' })
  idle.stop()
  const metricsRss = await scrapeRss(http)
  say(`footprint: ${PLAN.contexts} passivated and active contexts`)
  const beforeContexts = await node.command({ cmd: 'memory' })
  const spawned = await node.command({ cmd: 'spawn', count: PLAN.contexts })
  const activated = await node.command({ cmd: 'activate', count: PLAN.contexts })
  await node.stop()

  // The same node with in-process sandbox hosts ('thread' isolation): what process isolation costs.
  say('Circles local, thread isolation, trivial script, 50 connections')
  const threadNode = await startServer('./servers/circles-server.js', { BENCH_SANDBOX_PROCESSES: String(sandboxProcesses), BENCH_SANDBOX_ISOLATION: 'thread' })
  const threadIsolation = await load({ mode: 'play', url: threadNode.info['url']!, connections: 50, durationMs: PLAN.durationMs, warmupMs: PLAN.warmupMs, script: SCRIPTS.trivial })
  await threadNode.stop()

  const cross = await measureCrossNode(say)
  progressDone()

  const per = (after: Record<string, number>, before: Record<string, number>, n: number, key: 'held' | 'rss') => (after[key]! - before[key]!) / n
  const footprint = {
    idle_connections: PLAN.idle,
    bytes_per_idle_connection: per(withIdle, beforeIdle, PLAN.idle, 'held'),
    rss_bytes_per_idle_connection: per(withIdle, beforeIdle, PLAN.idle, 'rss'),
    contexts: PLAN.contexts,
    bytes_per_passivated_context: per(spawned, beforeContexts, PLAN.contexts, 'held'),
    bytes_per_active_context: per(activated, spawned, PLAN.contexts, 'held'),
    rss_bytes_per_active_context: per(activated, spawned, PLAN.contexts, 'rss'),
    active_after_activation: activated['active'],
    node_rss_bytes: metricsRss,
  }
  const at = (list: LoadResult[], c: number) => list.find((r) => r.connections === c)
  const a50 = at(ceilingA, 50)!
  const l50 = at(local.trivial, 50)!
  const summary = {
    local_vs_ceiling_a_at_50: l50.per_second / a50.per_second,
    local_p99_ms_at_50: l50.latency_ms.p99,
    local_vs_ceiling_b: l50.per_second / ceilingB[0]!.runs_per_second,
    handshakes_per_second: handshakes.per_second,
    play_p99_quiet_ms: quiet.latency_ms.p99,
    play_p99_during_flood_ms: flooded.latency_ms.p99,
    flood_p99_ratio: flooded.latency_ms.p99 / quiet.latency_ms.p99,
    bad_authentications_per_second: flood.per_second,
  }
  Object.assign(results, {
    kind: 'end-to-end',
    quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: { ...PLAN, sandbox_processes: sandboxProcesses, scripts: SCRIPTS },
    ceiling_a: ceilingA,
    ceiling_b: ceilingB,
    local,
    local_thread_isolation: threadIsolation,
    cross_node: cross,
    auth: { handshakes, quiet, flooded, flood },
    footprint,
    summary,
    seconds: (performance.now() - started) / 1000,
  })

  const headers = ['run', 'conns', 'req/s', '÷ ceiling A', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors']
  const rows: (string | number)[][] = []
  for (const r of ceilingA) rows.push(row('ceiling A: ws echo', r))
  for (const script of ['trivial', 'small'] as const) {
    for (const r of local[script]) rows.push(row(`Circles local, ${script}`, r, at(ceilingA, r.connections)?.per_second))
  }
  rows.push(row('Circles, thread isolation, trivial', threadIsolation, a50.per_second))
  rows.push(row('play, quiet', quiet, a50.per_second))
  rows.push(row('play, bad-auth flood', flooded, a50.per_second))
  if (cross.available) {
    rows.push(row('local play on the cross-node owner', cross.local, a50.per_second))
    rows.push(row('cross-node, 1 context', cross.one_context, a50.per_second))
    rows.push(row('cross-node, 50 contexts', cross.fifty_contexts, a50.per_second))
  }
  console.log(table(headers, rows))
  console.log('')
  console.log(
    table(
      ['figure', 'value'],
      [
        ...ceilingB.map((b): [string, string] => [`ceiling B: sandbox pool alone, ${b.script} (runs/s)`, formatNumber(b.runs_per_second)]),
        ['Circles local ÷ ceiling A at 50 connections', `${summary.local_vs_ceiling_a_at_50.toFixed(2)}×`],
        ['Circles local p99 at 50 connections (ms)', formatNumber(summary.local_p99_ms_at_50)],
        ['handshakes/s (fetch_nonce + sign + authenticate, 8 loops)', formatNumber(handshakes.per_second)],
        ['play p99 during bad-signature flood ÷ quiet', `${summary.flood_p99_ratio.toFixed(2)}×`],
        ['bad authenticate attempts/s during the flood', formatNumber(flood.per_second)],
        [`memory per idle connection (bytes, heap + buffers, ${PLAN.idle} open)`, formatNumber(footprint.bytes_per_idle_connection)],
        [`memory per passivated context (bytes, ${PLAN.contexts} registered)`, formatNumber(footprint.bytes_per_passivated_context)],
        [`memory per active context (bytes, ${PLAN.contexts} with a live actor)`, formatNumber(footprint.bytes_per_active_context)],
        ...(cross.available
          ? [
              ['cross-node ÷ local play (same run, 50 connections), 1 context', `${cross.ratio_one_context.toFixed(2)}×`] as [string, string],
              ['cross-node ÷ local play (same run, 50 connections), 50 contexts', `${cross.ratio_fifty_contexts.toFixed(2)}×`] as [string, string],
            ]
          : [['cross-node', `not measured: ${cross.reason}`] as [string, string]]),
      ],
    ),
  )
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

await (onlyCrossNode ? crossNodeOnly() : main())

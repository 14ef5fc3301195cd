/**
 * A Circles node for the benchmark, in its own process. Prints `{"url", "http", "circle",
 * "caller", "callee"}` once listening (`caller`: a context whose clients' scripts may call
 * out, to `callee`), then takes JSON-line commands on stdin (answered on stdout) for the footprint
 * measurements:
 *   {"cmd":"memory"}                 → {"rss","held"} (held: V8 heap used + external, after GC)
 *   {"cmd":"spawn","count":N}        → registers N passivated peer contexts
 *   {"cmd":"activate","count":N}     → runs one trivial script in each of the first N of them
 *   {"cmd":"cold","count":N}         → plays once in each of N passivated contexts, one after the
 *                                       other: {"p50_ms","p99_ms"} of the time to their first answer
 *   {"cmd":"urls","count":N}         → ws URLs of the first N spawned contexts (spawning as needed)
 *   {"cmd":"lag-reset"}              → starts a new event-loop delay histogram
 *   {"cmd":"lag"}                    → {"p50_ms","p99_ms","max_ms","mean_ms"} since the reset
 *   {"cmd":"pids"}                   → {"pid","host_pids"}: this process and its sandbox hosts now
 *   {"cmd":"board"}                  → {"url"}: a new context any authenticated caller may write and watch
 *   {"cmd":"rss"}                    → {"rss","peak_rss"}: now, and the highest since the process started
 *
 * BENCH_HOSTILE=1 sets the node up for the hostile-neighbours rows: the circle admits anonymous
 * callers, has an 8 MiB heap and 20 s time limits (a memory bomb aborts its host at once rather
 * than timing out), and the load limits apply to loopback (clients come from 127.0.0.x aliases).
 *
 * Cross-node: with BENCH_REDIS_URL (and BENCH_REDIS_PREFIX) the node joins the others through
 * Redis; BENCH_CONTEXTS=N makes it host N more contexts, whose keys it prints as `contexts`
 * once it has claimed them.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { CircleNode } from '../../src/node/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { createLogger } from '../../src/log/index.js'
import { parseRedisTarget } from '../../src/queue/index.js'

const processes = Number(process.env['BENCH_SANDBOX_PROCESSES'] ?? '1')
const isolation = process.env['BENCH_SANDBOX_ISOLATION'] === 'thread' ? 'thread' : 'process'
const dbPath = mkdtempSync(join(tmpdir(), 'circles-bench-node-'))
const circle = generateKeyPair()
const redisUrl = process.env['BENCH_REDIS_URL']
const redis =
  redisUrl === undefined
    ? undefined
    : { target: parseRedisTarget([redisUrl]), secret: 'bench-cluster-secret-0123456789', prefix: process.env['BENCH_REDIS_PREFIX'] ?? 'circles-bench:' }
const hostile = process.env['BENCH_HOSTILE'] === '1'
const node = await CircleNode.start({
  dbPath,
  circles: [
    {
      name: 'bench',
      keyPair: circle,
      host: '127.0.0.1',
      port: 0,
      ...(hostile ? { policy: { run: 'anonymous', write: 'authenticated' }, overrides: { limits: { memoryMb: 8, timeoutMs: 20_000, cpuMs: 20_000 } } } : {}),
    },
  ],
  ...(hostile ? { limits: { loopback: true } } : {}),
  sandbox: { processes, isolation },
  gateway: { maxInFlight: 1024, idleTimeoutMs: 600_000 },
  // Errors only: the auth-flood phases would otherwise print a warning per bad signature.
  logger: createLogger({ level: 'error', destination: process.stderr }),
  ...(redis === undefined ? {} : { redis }),
})
const served = node.served[0]!
// The calls row: any authenticated client's scripts may call out of `caller`, to `callee`.
const caller = generateKeyPair().publicKey
const callee = generateKeyPair().publicKey
await node.peers.spawnPeer({ pubkey: caller, policy: { run: 'authenticated', write: 'owner', call: 'authenticated' } })
await node.peers.spawnPeer({ pubkey: callee })
const reply = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)
const contexts: string[] = []
for (let i = 0; i < Number(process.env['BENCH_CONTEXTS'] ?? '0'); i++) {
  const { publicKey } = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: publicKey })
  contexts.push(publicKey)
}
await node.redis?.whenServing()
reply({ url: served.url, http: `http://127.0.0.1:${served.port}`, circle: circle.publicKey, caller, callee, contexts, pid: process.pid, host_pids: node.sandbox.pids })

const spawned: string[] = []
/** The node's own event-loop delay (10 ms sampling), as perf_hooks measures it. */
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
const ms = (ns: number) => Math.round(ns / 1e4) / 100
/**
 * Memory once it has settled: RSS, and what the node holds (V8 heap + off-heap buffers). Sockets
 * of an earlier phase may still be closing and their buffers are freed by finalisers a turn after
 * a collection, so collect until what is held stops falling (at most 20 rounds).
 */
const memory = async () => {
  let held = Number.POSITIVE_INFINITY
  for (let round = 0; round < 20; round++) {
    global.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 25))
    const m = process.memoryUsage()
    const now = m.heapUsed + m.external
    if (now > held * 0.998) return { rss: m.rss, held: Math.min(now, held) }
    held = now
  }
  return { rss: process.memoryUsage().rss, held }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  void (async () => {
    const command = JSON.parse(line) as { cmd: string; count?: number }
    switch (command.cmd) {
      case 'memory':
        return reply(await memory())
      case 'pids':
        return reply({ pid: process.pid, host_pids: node.sandbox.pids })
      case 'stats':
        return reply({ hosts: node.sandbox.stats })
      case 'spawn': {
        for (let i = 0; i < (command.count ?? 0); i++) {
          const { publicKey } = generateKeyPair()
          await node.peers.spawnPeer({ pubkey: publicKey })
          spawned.push(publicKey)
        }
        return reply({ spawned: spawned.length, ...(await memory()) })
      }
      case 'urls': {
        while (spawned.length < (command.count ?? 0)) {
          const { publicKey } = generateKeyPair()
          await node.peers.spawnPeer({ pubkey: publicKey })
          spawned.push(publicKey)
        }
        return reply({ urls: spawned.slice(0, command.count ?? 0).map((k) => `${served.url}${k}`) })
      }
      case 'cold': {
        // Contexts that never ran (or passivated): the time to the first answer includes
        // building the actor and opening the namespace on the sandbox thread.
        const keys = spawned.slice(-(command.count ?? 0))
        const times: number[] = []
        for (const k of keys) {
          const started = performance.now()
          await node.peers.play(k, { caller: k, script: '1' })
          times.push(performance.now() - started)
        }
        times.sort((a, b) => a - b)
        const at = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] ?? Number.NaN
        return reply({ p50_ms: at(50), p99_ms: at(99), samples: times.length })
      }
      case 'board': {
        const { publicKey } = generateKeyPair()
        await node.peers.spawnPeer({ pubkey: publicKey, policy: { run: 'authenticated', write: 'authenticated' } })
        return reply({ url: `${served.url}${publicKey}` })
      }
      case 'rss':
        return reply({ rss: process.memoryUsage().rss, peak_rss: process.resourceUsage().maxRSS * 1024 })
      case 'lag-reset':
        lag.reset()
        return reply({ reset: true })
      case 'lag':
        return reply({ p50_ms: ms(lag.percentile(50)), p99_ms: ms(lag.percentile(99)), max_ms: ms(lag.max), mean_ms: ms(lag.mean) })
      case 'activate': {
        const keys = spawned.slice(0, command.count ?? 0)
        for (let i = 0; i < keys.length; i += 500) {
          await Promise.all(keys.slice(i, i + 500).map((k) => node.peers.play(k, { caller: k, script: '1' })))
        }
        return reply({ active: node.peers.size.active, ...(await memory()) })
      }
    }
  })()
})

const stop = async () => {
  await node.close()
  rmSync(dbPath, { recursive: true, force: true })
  process.exit(0)
}
process.on('SIGTERM', () => void stop())

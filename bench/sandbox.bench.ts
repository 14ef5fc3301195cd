/**
 * Sandbox throughput: runs/s straight into the pool (no network), per-run isolation on, for a
 * trivial and a ~1 KB script, with one and two host processes.
 *
 *   npm run bench:sandbox [-- --quick]
 */
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { DEFAULTS } from '../src/config/index.js'
import { generateKeyPair } from '../src/identity/index.js'
import { SandboxPool } from '../src/sandbox/index.js'
import { DEFAULT_QUOTA } from '../src/actors/peer/index.js'
import { DEFAULT_LIMITS } from '../src/sandbox/index.js'
import { cpuMsOf } from './lib/cpu.js'
import { machineInfo, progress, progressDone, table, writeResult } from './lib/report.js'
import { SCRIPTS } from './lib/scripts.js'

export interface SandboxFigure {
  readonly processes: number
  readonly script: string
  readonly runs: number
  readonly seconds: number
  readonly runs_per_second: number
  /** CPU time of this process (the node's side) and the host processes, per run. */
  readonly cpu_us_per_run: number
}

/** Measure runs/s with `processes` hosts for `seconds`, keeping every host busy. */
export async function measureSandbox(processes: number, scriptName: keyof typeof SCRIPTS, seconds: number): Promise<SandboxFigure> {
  const dbPath = mkdtempSync(join(tmpdir(), 'circles-bench-'))
  const pool = new SandboxPool({ processes })
  await pool.start()
  const script = SCRIPTS[scriptName]
  const contexts = Array.from({ length: processes * 4 }, () => generateKeyPair().publicKey)
  let runs = 0
  let failures = 0
  let stop = false
  // Each context keeps a window of runs in flight, as a busy peer actor does.
  const loop = async (circle: string) => {
    const ref = pool.register({ circle, root: join(dbPath, circle), dbPathLabel: circle, quota: DEFAULT_QUOTA, limits: DEFAULT_LIMITS })
    const request = { script, caller: circle, canWrite: true, canCall: false, timeoutMs: DEFAULTS.SCRIPT_TIMEOUT_MS }
    const one = async (): Promise<void> => {
      while (!stop) {
        const outcome = await pool.run(ref, request)
        if (outcome.code === null) runs++
        else failures++
      }
    }
    await Promise.all(Array.from({ length: DEFAULTS.MAX_RUNS_IN_FLIGHT_PER_CONTEXT }, one))
  }
  // Warm up (first isolate, JIT), then measure.
  stop = false
  const warm = contexts.map(loop)
  await new Promise((r) => setTimeout(r, 500))
  stop = true
  await Promise.all(warm)
  runs = 0
  stop = false
  const watched = [process.pid, ...pool.pids]
  const cpuBefore = cpuMsOf(watched)
  const started = performance.now()
  const loops = contexts.map(loop)
  await new Promise((r) => setTimeout(r, seconds * 1000))
  stop = true
  await Promise.all(loops)
  const elapsed = (performance.now() - started) / 1000
  const cpuMs = cpuMsOf(watched) - cpuBefore
  await pool.close()
  rmSync(dbPath, { recursive: true, force: true })
  if (failures > 0) throw new Error(`${failures} runs failed during the sandbox benchmark`)
  return { processes, script: scriptName, runs, seconds: elapsed, runs_per_second: runs / elapsed, cpu_us_per_run: (cpuMs * 1000) / runs }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick')
  const seconds = quick ? 1 : 4
  const figures: SandboxFigure[] = []
  for (const processes of [1, 2]) {
    for (const script of ['trivial', 'small'] as const) {
      progress(`sandbox: ${processes} process(es), ${script} script…`)
      figures.push(await measureSandbox(processes, script, seconds))
    }
  }
  progressDone()
  console.log(table(['script', 'processes', 'runs', 'runs/s', 'CPU µs/run'], figures.map((f) => [f.script, f.processes, f.runs, f.runs_per_second, f.cpu_us_per_run])))
  const path = writeResult('sandbox', { kind: 'sandbox', quick, machine: machineInfo(), seconds, figures })
  console.log(`\nresults: ${path}`)
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

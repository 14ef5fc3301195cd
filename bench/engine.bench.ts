/**
 * The engine alone: runs/s of one isolate on this thread — no piscina, no host process, no
 * hand-off, no network. With the echo ceiling it gives the one-core limit of the `play` path
 * (a request costs at least the echo's work plus one run), a figure that does not move as the
 * path between them gets faster.
 *
 *   node dist/bench/engine.bench.js [--seconds N] [--script trivial|small] [--cold]
 *
 * `--cold` makes every run's text unique (a comment with a counter), so V8's compilation cache
 * never hits: the difference to a warm run is what caching compiled scripts buys.
 * Prints one JSON line: { script, cold, runs, seconds, runs_per_second, us_per_run }.
 */
import { DEFAULTS } from '../src/config/index.js'
import { WriteLedger } from '../src/live/index.js'
import { Engine, type RunStore } from '../src/sandbox/engine.js'
import { SCRIPTS } from './lib/scripts.js'

export interface EngineFigure {
  readonly script: keyof typeof SCRIPTS
  readonly cold: boolean
  readonly runs: number
  readonly seconds: number
  readonly runs_per_second: number
  readonly us_per_run: number
}

const NO_STORAGE: RunStore = {
  read: () => null,
  write: () => {},
  remove: () => false,
  list: () => [],
}

/** Run `script` as fast as one thread can for `seconds` (after a warm-up). */
export function measureEngine(scriptName: keyof typeof SCRIPTS, seconds: number, cold = false): EngineFigure {
  const engine = new Engine({
    memoryMb: DEFAULTS.SCRIPT_MEMORY_MB,
    maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
    maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
    maxLogLines: DEFAULTS.MAX_LOG_LINES,
  })
  const circle = '02'.padEnd(66, 'a')
  const effects = { maxEmits: DEFAULTS.EMITS_PER_RUN, maxEmitBytes: DEFAULTS.EMIT_BYTES_PER_RUN, maxNotifyValueBytes: DEFAULTS.NOTIFY_VALUE_BYTES }
  const ctx = {
    circle,
    dbPathLabel: circle,
    store: NO_STORAGE,
    cpuMs: DEFAULTS.SCRIPT_CPU_MS,
    maxCallsInFlight: DEFAULTS.MAX_CALLS_IN_FLIGHT_PER_RUN,
    maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
    effects,
    ledger: new WriteLedger(),
  }
  const source = SCRIPTS[scriptName]
  let n = 0
  const once = () => {
    const script = cold ? `${source}\n// ${n}` : source
    const slice = engine.start(n, { script, caller: circle, canWrite: false, canCall: false, timeoutMs: DEFAULTS.SCRIPT_TIMEOUT_MS }, ctx)
    if (slice.type !== 'done' || slice.outcome.code !== null) throw new Error(`engine bench: the script failed: ${JSON.stringify(slice)}`)
    n++
  }
  const warmUntil = performance.now() + 300
  while (performance.now() < warmUntil) once()
  n = 0
  const started = performance.now()
  const until = started + seconds * 1000
  while (performance.now() < until) for (let i = 0; i < 100; i++) once()
  const elapsed = (performance.now() - started) / 1000
  engine.dispose()
  return { script: scriptName, cold, runs: n, seconds: elapsed, runs_per_second: n / elapsed, us_per_run: (elapsed * 1e6) / n }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name)
    return i < 0 ? undefined : process.argv[i + 1]
  }
  const script = (arg('--script') ?? 'trivial') as keyof typeof SCRIPTS
  if (!(script in SCRIPTS)) throw new Error(`--script must be one of ${Object.keys(SCRIPTS).join(', ')}`)
  const seconds = Number(arg('--seconds') ?? '3')
  process.stdout.write(`${JSON.stringify(measureEngine(script, seconds, process.argv.includes('--cold')))}\n`)
}

import { join } from 'node:path'
import { DEFAULTS } from '../../src/config/index.js'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import type { RunOutcome } from '../../src/protocol/index.js'
import type { RunLimits, SandboxContextRef, SandboxPool } from '../../src/sandbox/index.js'

export const LIMITS: RunLimits = {
  ...DEFAULT_LIMITS,
  timeoutMs: 500,
  cpuMs: 500,
  memoryMb: 32,
  maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
  maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
  maxLogLines: DEFAULTS.MAX_LOG_LINES,
  maxCallsInFlight: DEFAULTS.MAX_CALLS_IN_FLIGHT_PER_RUN,
  maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
}

export const QUOTA = {
  maxDocumentBytes: 4096,
  // Four documents of up to 4,096 bytes named "d0".."d3": 4 × (4,096 + 7 bytes of "dN.json").
  maxNamespaceBytes: 16_412,
  maxDocuments: DEFAULTS.MAX_DOCUMENTS,
  maxNameBytes: DEFAULTS.MAX_NAME_BYTES,
}

export interface Ctx {
  readonly circle: string
  readonly dbPath: string
  limits?: Partial<RunLimits>
  quota?: Partial<typeof QUOTA>
}

export function context(dbPath: string, circle = generateKeyPair().publicKey): Ctx {
  return { circle, dbPath }
}

export type RunSpec = string | { script: string; caller?: string; canWrite?: boolean; timeoutMs?: number }

/** A run's outcome with its body decoded: what a test asserts on. */
export type Decoded =
  | { type: 'ok'; output: string; result?: unknown; logs: string[]; logsTruncated: boolean; runMs: number; cpuMs: number; body: string }
  | { type: 'error'; code: string; message: string; logs: string[]; logsTruncated: boolean; runMs: number; cpuMs: number; body: string }

export function decode(outcome: RunOutcome): Decoded {
  const body = JSON.parse(`{${outcome.body}}`) as { output?: string; result?: unknown; logs: string[]; logs_truncated?: boolean }
  const common = { logs: body.logs, logsTruncated: body.logs_truncated === true, runMs: outcome.runMs, cpuMs: outcome.cpuMs, body: outcome.body }
  if (outcome.code === null) {
    return { type: 'ok', output: body.output!, ...(Object.hasOwn(body, 'result') ? { result: body.result } : {}), ...common }
  }
  return { type: 'error', code: outcome.code, message: outcome.message, ...common }
}

const refs = new WeakMap<SandboxPool, Map<string, SandboxContextRef>>()

/** The pool's registration of a test context (registered again when its limits or quota change). */
function refFor(pool: SandboxPool, ctx: Ctx): SandboxContextRef {
  let byKey = refs.get(pool)
  if (byKey === undefined) refs.set(pool, (byKey = new Map()))
  const limits = { ...LIMITS, ...ctx.limits }
  const quota = { ...QUOTA, ...ctx.quota }
  const key = `${ctx.dbPath}:${ctx.circle}:${JSON.stringify([limits, quota])}`
  let ref = byKey.get(key)
  if (ref === undefined) {
    ref = pool.register({ circle: ctx.circle, root: join(ctx.dbPath, ctx.circle), dbPathLabel: ctx.circle, limits, quota })
    byKey.set(key, ref)
  }
  return ref
}

/** Run scripts in order in one context (submitted together). */
export async function runAll(pool: SandboxPool, ctx: Ctx, scripts: readonly RunSpec[]): Promise<Decoded[]> {
  const ref = refFor(pool, ctx)
  const limits = { ...LIMITS, ...ctx.limits }
  const outcomes = await Promise.all(
    scripts.map((s) => {
      const spec = typeof s === 'string' ? { script: s } : s
      return pool.run(ref, {
        script: spec.script,
        caller: spec.caller ?? ctx.circle,
        canWrite: spec.canWrite ?? true,
        canCall: false,
        timeoutMs: spec.timeoutMs ?? limits.timeoutMs,
      })
    }),
  )
  return outcomes.map(decode)
}

export async function run(pool: SandboxPool, ctx: Ctx, script: RunSpec): Promise<Decoded> {
  const [outcome] = await runAll(pool, ctx, [script])
  return outcome!
}

/** A script that busy-waits `ms` and returns its context and the wall-clock interval it ran in. */
export function busyScript(ms: number): string {
  return `const start = Date.now(); while (Date.now() < start + ${ms}) {} [CIRCLE_PUBLIC_KEY, start, Date.now()]`
}

/** Whether any two [_, start, end] intervals overlap in time: runs that ran in parallel. */
export function someOverlap(intervals: readonly (readonly [string, number, number])[]): boolean {
  return intervals.some(([, s1, e1], i) => intervals.some(([, s2, e2], j) => i !== j && s1 < e2 && s2 < e1))
}

import { join } from 'node:path'
import { DEFAULTS } from '../../src/config/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import type { ContextBatch, RunLimits, RunOutcome, SandboxPool } from '../../src/sandbox/index.js'

export const LIMITS: RunLimits = {
  timeoutMs: 500,
  cpuMs: 500,
  memoryMb: 32,
  maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
  maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
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

let seq = 0

/** Run scripts in order in one context, as one batch. */
export async function runAll(
  pool: SandboxPool,
  ctx: Ctx,
  scripts: readonly (string | { script: string; caller?: string; canWrite?: boolean; timeoutMs?: number })[],
): Promise<RunOutcome[]> {
  const limits = { ...LIMITS, ...ctx.limits }
  const batch: ContextBatch = {
    circle: ctx.circle,
    dbPath: ctx.dbPath,
    root: join(ctx.dbPath, ctx.circle),
    quota: { ...QUOTA, ...ctx.quota },
    limits,
    runs: scripts.map((s) => {
      const spec = typeof s === 'string' ? { script: s } : s
      return {
        taskId: `t${++seq}`,
        script: spec.script,
        caller: spec.caller ?? ctx.circle,
        canWrite: spec.canWrite ?? true,
        timeoutMs: spec.timeoutMs ?? limits.timeoutMs,
      }
    }),
  }
  const result = await pool.run(batch)
  return [...result.outcomes]
}

export async function run(
  pool: SandboxPool,
  ctx: Ctx,
  script: string | { script: string; caller?: string; canWrite?: boolean; timeoutMs?: number },
): Promise<RunOutcome> {
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

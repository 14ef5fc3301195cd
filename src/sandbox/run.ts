import { DEFAULTS } from '../config/index.js'
import type { StorageQuota } from '../storage/index.js'

/** Limits of the runs of one context (defaults in src/config/defaults.ts, per-circle overrides). */
export interface RunLimits {
  /** Wall-clock bound of a run, before any per-request `timeout_ms` lowers it. */
  readonly timeoutMs: number
  readonly cpuMs: number
  readonly memoryMb: number
  /** UTF-8 bytes of the completion value's members (`output`, `result`) as sent. */
  readonly maxOutputBytes: number
  /** UTF-8 bytes of the `logs` member as sent. */
  readonly maxLogBytes: number
  /** `print` lines kept per run. */
  readonly maxLogLines: number
  /** `emit` calls per run. */
  readonly maxEmits: number
  /** UTF-8 bytes of topics and values one run may `emit`. */
  readonly maxEmitBytes: number
  /** Largest value a change or event notification carries (UTF-8 bytes of its JSON). */
  readonly maxNotifyValueBytes: number
  /** Calls one run may have in flight at once. */
  readonly maxCallsInFlight: number
  /** Largest script a run may pass to `call` (the node's largest `play` script). */
  readonly maxScriptBytes: number
}

/** The limits of a context that overrides none. */
export const DEFAULT_LIMITS: RunLimits = Object.freeze({
  timeoutMs: DEFAULTS.SCRIPT_TIMEOUT_MS,
  cpuMs: DEFAULTS.SCRIPT_CPU_MS,
  memoryMb: DEFAULTS.SCRIPT_MEMORY_MB,
  maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
  maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
  maxLogLines: DEFAULTS.MAX_LOG_LINES,
  maxEmits: DEFAULTS.EMITS_PER_RUN,
  maxEmitBytes: DEFAULTS.EMIT_BYTES_PER_RUN,
  maxNotifyValueBytes: DEFAULTS.NOTIFY_VALUE_BYTES,
  maxCallsInFlight: DEFAULTS.MAX_CALLS_IN_FLIGHT_PER_RUN,
  maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
})

/**
 * The facts of a context a sandbox host needs to run its scripts. Sent to a host once (and again
 * when they change), not with every run.
 */
export interface SandboxContext {
  readonly circle: string
  /** `DB_PATH/<circle>`: the namespace's folder on disk. */
  readonly root: string
  /** `DB_PATH` as scripts see it: the namespace's path relative to the database root. */
  readonly dbPathLabel: string
  readonly limits: RunLimits
  readonly quota: StorageQuota
}

/**
 * One script run: the one request type from the peer actor to the isolate. The context it runs
 * in travels separately ({@link SandboxContext}).
 */
export interface RunRequest {
  readonly script: string
  /** Canonical public key of the caller, '' for an anonymous caller. */
  readonly caller: string
  readonly canWrite: boolean
  /** Whether the script may call other contexts (the context's `call` policy admits the caller). */
  readonly canCall: boolean
  /**
   * CALL_CHAIN: the client that started the workflow, then each calling context. Absent for a
   * client's own play, whose chain is `[caller]`.
   */
  readonly chain?: readonly string[]
  /** The effective wall-clock limit: min(context limit, request timeout_ms, a caller's time left). */
  readonly timeoutMs: number
}

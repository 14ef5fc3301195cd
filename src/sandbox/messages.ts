import type { ErrorCode } from '../errors/index.js'
import type { StorageQuota } from '../storage/index.js'

/** Limits of the runs of one context (DESIGN §5: defaults, per-circle overrides). */
export interface RunLimits {
  /** Wall-clock bound of a run, before any per-request `timeout_ms` lowers it. */
  readonly timeoutMs: number
  readonly cpuMs: number
  readonly memoryMb: number
  readonly maxOutputBytes: number
  readonly maxLogBytes: number
}

/** One script run, as queued in a context's mailbox. */
export interface RunRequest {
  readonly taskId: string
  readonly script: string
  /** Canonical public key of the caller, '' for an anonymous caller. */
  readonly caller: string
  readonly canWrite: boolean
  /** The effective wall-clock limit: min(context limit, request timeout_ms). */
  readonly timeoutMs: number
}

/** The runs of one context handed to a worker together; they run in order. */
export interface ContextBatch {
  readonly circle: string
  readonly dbPath: string
  /** `DB_PATH/<circle>`. */
  readonly root: string
  readonly quota: StorageQuota
  readonly limits: RunLimits
  readonly runs: readonly RunRequest[]
}

export type RunOutcome =
  | {
      readonly type: 'ok'
      /** The completion value as JSON text. */
      readonly json: string
      /** The completion value as `output`: a string as is, anything else its JSON. */
      readonly output: string
      readonly logs: readonly string[]
      readonly logsTruncated: boolean
      readonly runMs: number
      readonly cpuMs: number
    }
  | {
      readonly type: 'error'
      readonly code: ErrorCode
      readonly message: string
      readonly logs: readonly string[]
      readonly logsTruncated: boolean
      readonly runMs: number
      readonly cpuMs: number
    }

/** A run that ended in an error with nothing to report but the error (no logs). */
export function failedOutcome(code: ErrorCode, message: string, runMs = 0, cpuMs = 0): RunOutcome {
  return { type: 'error', code, message, logs: [], logsTruncated: false, runMs, cpuMs }
}

export interface ContextBatchResult {
  readonly outcomes: readonly RunOutcome[]
}

/** Messages to a sandbox worker thread (a discriminated union, as every thread message). */
export type WorkerTask = { readonly type: 'run'; readonly batches: readonly ContextBatch[] }

export type WorkerReply = { readonly type: 'run'; readonly results: readonly ContextBatchResult[] }

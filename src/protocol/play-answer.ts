import { ERROR_REGISTRY, circlesError, type CirclesError, type ErrorCode } from '../errors/index.js'
import type { RunEffects } from '../live/index.js'
import type { JsonRpcId, PlayResult } from './messages.js'

/**
 * How one script run ended: the one shape a run has from the isolate back to the socket.
 *
 * `body` is JSON text, already encoded where the run happened, of the members that depend on the
 * script: for a success `"output":…[,"result":…],"logs":[…][,"logs_truncated":true]`, for an error
 * `"logs":[…][,"logs_truncated":true]`. The node splices it into the answer without parsing or
 * re-encoding it: the sandbox has bounded its UTF-8 size already.
 */
export interface RunOutcome {
  /** `null` for a success; the error's code otherwise. */
  readonly code: ErrorCode | null
  /** The error's message (empty for a success). */
  readonly message: string
  readonly body: string
  /** Wall-clock time of the run in the isolate, from its start to its end (waiting on calls included). */
  readonly runMs: number
  readonly cpuMs: number
  /** Wall-clock time the run spent suspended, waiting on its calls. */
  readonly callsMs: number
  /** What the run's watchers are told (committed writes, emitted events), when it had any: the node's, never the answer's. */
  readonly effects?: RunEffects
}

/** What the node adds to a run's outcome: its task id and how long it waited in the context's mailbox. */
export interface RunReceipt {
  readonly taskId: string
  readonly queuedMs: number
}

const NO_LOGS = '"logs":[]'

/** An outcome for a run that never reached the isolate, or whose isolate died (no logs). */
export function failedRun(code: ErrorCode, message: string = ERROR_REGISTRY[code].message, runMs = 0, cpuMs = 0, callsMs = 0): RunOutcome {
  return { code, message, body: NO_LOGS, runMs, cpuMs, callsMs }
}

function ms(value: number): number {
  return Math.round(value * 1000) / 1000
}

function timings(receipt: RunReceipt, outcome: RunOutcome): string {
  return `"task_id":"${receipt.taskId}","timings":{"queued_ms":${ms(receipt.queuedMs)},"run_ms":${ms(outcome.runMs)},"cpu_ms":${ms(outcome.cpuMs)},"calls_ms":${ms(outcome.callsMs)}}`
}

/**
 * The JSON text of a `play` answer (success or error) for request `id`: the one encoder of run
 * outcomes. Successes and errors carry the same members after the script's own: `task_id` and
 * `timings` `{ queued_ms, run_ms, cpu_ms, calls_ms }` — in `result` for a success, in `error.data` for an
 * error.
 *
 * @example
 * encodePlayAnswer(7, { code: null, message: '', body: '"output":"2","result":2,"logs":[]', runMs: 0.1, cpuMs: 0.1, callsMs: 0 }, { taskId: 't', queuedMs: 0 })
 * // {"jsonrpc":"2.0","id":7,"result":{"output":"2","result":2,"logs":[],"task_id":"t","timings":{…}}}
 */
export function encodePlayAnswer(id: JsonRpcId, outcome: RunOutcome, receipt: RunReceipt): string {
  const head = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},`
  if (outcome.code === null) return `${head}"result":{${outcome.body},${timings(receipt, outcome)}}}`
  const rpc = ERROR_REGISTRY[outcome.code].rpc ?? ERROR_REGISTRY.INTERNAL_ERROR.rpc
  return (
    `${head}"error":{"code":${rpc},"message":${JSON.stringify(outcome.message)},` +
    `"data":{"code":"${outcome.code}",${outcome.body},${timings(receipt, outcome)}}}}`
  )
}

/**
 * A run's outcome as the programmatic API returns it: the {@link PlayResult} a client would read
 * off the wire, or a thrown Circles error whose `details` are the answer's `error.data`. Only the
 * script's own members (`body`) are parsed; the node's (`task_id`, `timings`) are built as values.
 */
export function playResultOf(outcome: RunOutcome, receipt: RunReceipt): PlayResult {
  const members = JSON.parse(`{${outcome.body}}`) as Record<string, unknown>
  const timed = {
    ...members,
    task_id: receipt.taskId,
    timings: { queued_ms: ms(receipt.queuedMs), run_ms: ms(outcome.runMs), cpu_ms: ms(outcome.cpuMs), calls_ms: ms(outcome.callsMs) },
  }
  if (outcome.code === null) return timed as unknown as PlayResult
  throw circlesError(outcome.code, outcome.message, timed) as CirclesError
}

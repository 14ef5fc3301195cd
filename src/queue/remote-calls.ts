import type { CalleeRequest } from '../calls/index.js'
import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import { isCanonicalPublicKey, type PublicKeyHex } from '../identity/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
import type { PlayOutcome, PlayRequest } from '../actors/peer/index.js'

/**
 * Calls across nodes (`call(peer, script)` to a context another node owns). A call travels as a
 * task, the way a client's cross-node play does — same enqueue, MAC, single-use and deadline
 * rules — with what makes it a call inside the MAC'd task: the caller field is the calling
 * context (its authority), and the call part below carries CALL_CHAIN, the workflow's id and the
 * run budget the workflow has left on the sending node. The task's deadline is the calling run's
 * (the callee gets no longer). The owner runs it through the call router's entry for calls from
 * other nodes, which checks the chain again (shape, cycle, depth) before the callee runs.
 */

/** What makes a task a call: it rides in the task, under the task's MAC (domain `call`). */
export interface TaskCall {
  /** CALL_CHAIN: the originating client ('' when anonymous), then each calling context, the caller last. */
  readonly chain: readonly string[]
  /** The workflow's id (its first run's task id). */
  readonly chainId: string
  /** Runs the workflow may still start, as the sending node counted them after this call's own. */
  readonly runsLeft: number
}

/** Longest chain a task may carry (the owner's depth limit refuses deeper ones before any run). */
export const MAX_TASK_CHAIN = 256
const MAX_CHAIN_ID_CHARS = 64
const MAX_RUNS = 2 ** 31 - 1

/** The call's fields as its task's MAC covers them, after the task's own. */
export function callMacFields(call: TaskCall): (string | number)[] {
  return [JSON.stringify(call.chain), call.chainId, call.runsLeft]
}

/** The call part of a stored task (the task's ninth element). */
export function encodeCall(call: TaskCall): unknown[] {
  return [call.chain, call.chainId, call.runsLeft]
}

function invalid(reason: string, taskId: string): CirclesError {
  return circlesError('QUEUE_MESSAGE_INVALID', `A message read from Redis was refused: ${reason}`, { reason, task_id: taskId })
}

/**
 * Read the call part of a stored task: a chain of keys ending with the task's caller, a chain id
 * and a run count. Throws QUEUE_MESSAGE_INVALID (the MAC is checked after, over what was read).
 */
export function readCall(value: unknown, caller: string, taskId: string): TaskCall {
  if (!Array.isArray(value) || value.length !== 3) throw invalid('a call of the wrong shape', taskId)
  const [chain, chainId, runsLeft] = value as unknown[]
  if (!Array.isArray(chain) || chain.length < 2 || chain.length > MAX_TASK_CHAIN) throw invalid('a call with a malformed chain', taskId)
  const [first, ...contexts] = chain as unknown[]
  if (first !== '' && !isCanonicalPublicKey(first)) throw invalid('a call chain that does not start with a client key', taskId)
  if (!contexts.every((key) => isCanonicalPublicKey(key))) throw invalid('a call chain with a key that is not a public key', taskId)
  if (caller === '' || chain[chain.length - 1] !== caller) throw invalid('a call whose caller does not end its chain', taskId)
  if (typeof chainId !== 'string' || chainId === '' || chainId.length > MAX_CHAIN_ID_CHARS) throw invalid('a call with a malformed chain id', taskId)
  if (typeof runsLeft !== 'number' || !Number.isInteger(runsLeft) || runsLeft < 0 || runsLeft > MAX_RUNS) throw invalid('a call with a bad run budget', taskId)
  return { chain: chain as string[], chainId, runsLeft }
}

/** The node's Redis bridge, as a gateway for calls. */
export interface CallGateway {
  dispatch(pubkey: string, request: PlayRequest, call?: TaskCall): Promise<PlayOutcome>
}

/**
 * Send a call to the context's owner through the bridge and resolve with the callee's outcome,
 * or with the refusal as an outcome (UNKNOWN_CIRCLE, UNAVAILABLE, TASK_EXPIRED, FORBIDDEN, …), as
 * the call router expects of a dispatch.
 */
export async function callThrough(bridge: CallGateway, target: PublicKeyHex, request: CalleeRequest): Promise<RunOutcome> {
  if (request.signal?.aborted === true) return failedRun('CALL_CANCELLED')
  const play: PlayRequest = {
    caller: request.caller,
    script: request.script,
    deadline: request.deadline,
    ...(request.origin === undefined ? {} : { origin: request.origin }),
    ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
  }
  try {
    const played = await bridge.dispatch(target, play, { chain: request.chain, chainId: request.chainId, runsLeft: request.runsLeft ?? 0 })
    return played.outcome
  } catch (error) {
    if (isCirclesError(error)) return failedRun(error.code, error.message)
    return failedRun('INTERNAL_ERROR', 'call: the call could not be sent to its owner')
  }
}

/** The fields a call task adds to the play its owner runs: the chain, the workflow and the calling run's deadline. */
export function calleePlay(call: TaskCall, deadline: number): Pick<PlayRequest, 'chain' | 'chainId' | 'deadline'> {
  return { chain: call.chain, chainId: call.chainId, deadline }
}

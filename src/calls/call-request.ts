import { isPositiveInteger } from '../config/index.js'
import { circlesError, type CirclesError } from '../errors/index.js'
import { normalizePublicKey, type PublicKeyHex } from '../identity/index.js'
import { scriptSizeError } from '../protocol/index.js'

/**
 * A call as it travels from a calling run to the context it calls: explicit and serialisable
 * (plain JSON), the shape a call keeps wherever it is routed.
 */
export interface CallRequest {
  /** The callee, a public key as the script gave it (normalised when the call is checked). */
  readonly target: string
  readonly script: string
  /** The calling context: the callee's CALLER_PUBLIC_KEY, which its policy judges. */
  readonly caller: PublicKeyHex
  /**
   * The callee's CALL_CHAIN: the client that started the workflow ('' when anonymous), then each
   * calling context in order, the caller last.
   */
  readonly chain: readonly string[]
  /** Names the workflow whose run budget the call draws on (the task id of its first run). */
  readonly chainId: string
  /** The originating client's address, when the workflow came through a socket. */
  readonly origin?: string
  /** When the calling run's time is up, in milliseconds since the epoch: the callee gets no longer. */
  readonly deadline: number
  /** The call's `timeout_ms`: it can only lower the callee's limit. */
  readonly timeoutMs?: number
}

/** Call limits (defaults in src/config/defaults.ts). */
export interface CallLimits {
  /** Calls nested in one workflow. */
  readonly maxDepth: number
  /** Largest script a call may carry. */
  readonly maxScriptBytes: number
}

const MAX_TIMEOUT_MS = 2_147_483_647
const MAX_CHAIN_ID_CHARS = 64

const invalid = (message: string): CirclesError => circlesError('INVALID_PARAMS', `call: ${message}`)

/**
 * Check a call where it is routed: its shape (it may come from a sandbox host, and later from
 * another node), then the rules of a chain — no context twice on it (CALL_CYCLE), no deeper than
 * `maxDepth` (CALL_DEPTH_EXCEEDED). Returns the callee's canonical key, or the coded error that
 * refuses the call.
 */
export function checkCallRequest(request: CallRequest, limits: CallLimits): PublicKeyHex | CirclesError {
  const { chain } = request
  if (typeof request.script !== 'string') return invalid('script must be a string')
  const tooLarge = scriptSizeError(request.script, limits.maxScriptBytes, 'call')
  if (tooLarge !== undefined) return tooLarge
  if (!Array.isArray(chain) || chain.length < 2 || !chain.every((key) => typeof key === 'string')) return invalid('malformed call chain')
  if (chain[chain.length - 1] !== request.caller) return invalid('the caller must end the call chain')
  if (typeof request.chainId !== 'string' || request.chainId === '' || request.chainId.length > MAX_CHAIN_ID_CHARS) return invalid('malformed chain id')
  if (typeof request.deadline !== 'number' || !Number.isFinite(request.deadline)) return invalid('malformed deadline')
  const { timeoutMs } = request
  if (timeoutMs !== undefined && !isPositiveInteger(timeoutMs, MAX_TIMEOUT_MS)) return invalid('timeout_ms must be a positive integer')
  let target: PublicKeyHex
  try {
    target = normalizePublicKey(request.target)
  } catch (error) {
    return error as CirclesError
  }
  // chain[0] is the client that started it all, not a context on the chain.
  if (chain.indexOf(target, 1) >= 0) return circlesError('CALL_CYCLE', `call: ${target.slice(0, 10)}… is already on this call chain (a context cannot be entered twice)`)
  if (chain.length - 1 > limits.maxDepth) return circlesError('CALL_DEPTH_EXCEEDED', `call: calls may be nested ${limits.maxDepth} deep at most`, { limit: limits.maxDepth })
  return target
}

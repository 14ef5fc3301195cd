import type { ClosingErrorCode, ErrorCode } from '../../errors/index.js'
import type { Claimant, PublicKeyHex, SignatureCheck } from '../../identity/index.js'
import type { JsonRpcId } from '../../protocol/index.js'

/** Events of a gateway connection's auth lifecycle. */
export type GatewayEvent =
  /**
   * `fetch_nonce` was answered for this key or address; `nonce` is the whole sign-in message
   * issued (the exact text a signature must be over), not only its nonce line.
   */
  | { readonly type: 'NONCE_ISSUED'; readonly claimant: Claimant; readonly nonce: string }
  /** `authenticate` arrived (answered when verification ends). */
  | { readonly type: 'AUTHENTICATE'; readonly requestId: JsonRpcId; readonly claimant: Claimant; readonly signature: string }
  /** Neither a frame nor a flushed answer for the idle timeout. */
  | { readonly type: 'IDLE' }
  /** The socket went over a budget (SLOW_CONSUMER): it is closed with that code. */
  | { readonly type: 'CUT'; readonly code: ClosingErrorCode }
  /** The node is draining. */
  | { readonly type: 'SHUTDOWN' }
  /** The socket closed (either side). */
  | { readonly type: 'SOCKET_CLOSED' }

export interface GatewayInput {
  readonly nonceTtlMs: number
  /** Checks a signature (off the event loop); injected so that the machine is built once, not per connection. */
  readonly verify: (input: VerifyInput) => Promise<VerifyOutput>
}

/** Why the connection is closing, and the request to answer with the error, if any. */
export interface CloseIntent {
  readonly code: ErrorCode
  readonly wsCode: number
  readonly requestId?: JsonRpcId
}

export interface GatewayContext {
  readonly nonceTtlMs: number
  readonly verify: (input: VerifyInput) => Promise<VerifyOutput>
  /** The outstanding sign-in message (see NONCE_ISSUED): single use, for one key or address. */
  readonly nonce: { readonly value: string; readonly claimant: Claimant } | null
  /** The authenticate request being verified. */
  readonly verifying: { readonly requestId: JsonRpcId; readonly claimant: Claimant; readonly signature: string; readonly nonce: string } | null
  /** The authenticated caller: the key the signature recovered (for an address claim too). */
  readonly caller: PublicKeyHex | null
  /** Set on success: the authenticate request to answer `{ authenticated: true }`. */
  readonly answered: JsonRpcId | undefined
  readonly close: CloseIntent | null
}

/** What the verifier actor receives and returns. */
export interface VerifyInput {
  readonly nonce: string
  readonly claimant: Claimant
  readonly signature: string
}

/** The `verifySignature` actor's input: the request and the function that checks it. */
export interface VerifyRequest extends VerifyInput {
  readonly verify: (input: VerifyInput) => Promise<VerifyOutput>
}
export type VerifyOutput = SignatureCheck

import type { ErrorCode } from '../errors/index.js'

/** Codes the client raises itself, on the caller's side (docs/errors.md lists them). */
export type ClientErrorCode = Extract<ErrorCode, 'CONNECT_FAILED' | 'CONNECTION_CLOSED' | 'REQUEST_TIMEOUT' | 'ABORTED' | 'MALFORMED_ANSWER' | 'SIGN_IN_MISMATCH' | 'INVALID_OPTION'>

/** `error.data`: always carries the stable `code` string, plus what the node or the client added. */
export type ErrorData = { readonly code: string } & Readonly<Record<string, unknown>>

/**
 * Every error a {@link CirclesClient} rejects with. Match on `code` (the same string as
 * `data.code`): a node's error code such as `FORBIDDEN` ({@link RpcError}), or one the client
 * raises itself ({@link ClientErrorCode}).
 *
 * @example
 * try { await client.play('save_data("x", 1)') }
 * catch (error) { if (error instanceof CirclesClientError && error.code === 'FORBIDDEN') … }
 */
export class CirclesClientError extends Error {
  /** The stable code, equal to `data.code`. */
  readonly code: string
  readonly data: ErrorData
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.data = { ...data, code }
  }
}

/** The node answered with an error; `code` is its `data.code`, `rpcCode` the JSON-RPC code. */
export class RpcError extends CirclesClientError {
  readonly rpcCode: number
  constructor(rpcCode: number, message: string, data: ErrorData) {
    super(data.code, message, data)
    this.rpcCode = rpcCode
  }
}

/** The connection could not be opened (CONNECT_FAILED). */
export class ConnectError extends CirclesClientError {
  constructor(url: string, detail: string) {
    super('CONNECT_FAILED', `cannot connect to ${url}${detail ? `: ${detail}` : ''}`, { url })
  }
}

/**
 * The connection closed (or was never opened) before the answer came (CONNECTION_CLOSED). A
 * request that had been sent may have run on the node: the client never sends it again.
 */
export class ConnectionClosedError extends CirclesClientError {
  /** The WebSocket close code (1006 when the connection dropped without one). */
  readonly closeCode: number
  readonly reason: string
  constructor(closeCode: number, reason: string, message?: string) {
    super('CONNECTION_CLOSED', message ?? `connection closed (${closeCode}${reason ? ` ${reason}` : ''})`, {
      close_code: closeCode,
      reason,
    })
    this.closeCode = closeCode
    this.reason = reason
  }
}

/** No answer within the request's timeout (REQUEST_TIMEOUT); a late answer is dropped. */
export class RequestTimeoutError extends CirclesClientError {
  readonly timeoutMs: number
  constructor(method: string, timeoutMs: number) {
    super('REQUEST_TIMEOUT', `${method}: no answer within ${timeoutMs} ms`, { method, timeout_ms: timeoutMs })
    this.timeoutMs = timeoutMs
  }
}

/** The request's AbortSignal fired (ABORTED). A request already sent may still run on the node. */
export class RequestAbortedError extends CirclesClientError {
  constructor(method: string, reason: unknown) {
    super('ABORTED', `${method}: aborted${reason instanceof Error ? ` (${reason.message})` : ''}`, { method })
  }
}

/** The node's answer does not have the shape the protocol promises (MALFORMED_ANSWER). */
export class MalformedAnswerError extends CirclesClientError {
  constructor(what: string) {
    super('MALFORMED_ANSWER', `malformed answer from the node: ${what}`)
  }
}

/**
 * The node asked for a signature over a text that is not the sign-in message the client expects
 * for the URL it dialled (SIGN_IN_MISMATCH): another domain or context, another address, times off
 * the client's clock, or no sign-in message at all. Nothing was signed. `field` names the first
 * part that differs (`domain`, `uri`, `statement`, `issued at`, …, or `layout`).
 */
export class SignInMismatchError extends CirclesClientError {
  readonly field: string
  constructor(field: string, detail: string) {
    super('SIGN_IN_MISMATCH', `refused to sign: ${detail}`, { field })
    this.field = field
  }
}

/**
 * An option given to the client is invalid (INVALID_OPTION): thrown by the builder, the signers
 * and a request's options; the message names the option and the rule.
 */
export class InvalidOptionError extends CirclesClientError {
  constructor(message: string) {
    super('INVALID_OPTION', message)
  }
}

/**
 * Every error Circles can report, in one table.
 *
 * Each entry carries the stable `data.code` string clients match on, the JSON-RPC error code
 * sent on the wire (`null` for errors that never reach a socket: configuration and command
 * line), the base class the thrown error extends (`TypeError` for bad arguments, `RangeError`
 * for limits), a default message, and — for protocol errors that end the connection — the
 * WebSocket close code.
 *
 * The error table of docs/errors.md is checked against this registry by a test: adding a code here
 * without documenting it fails the suite.
 */
export type ErrorBase = 'Error' | 'TypeError' | 'RangeError'

/**
 * The WebSocket close codes Circles uses (RFC 6455, section 7.4.1): the registry's `close`
 * column names them, and the sides that close without an error (a client closing normally, or on
 * an answer it cannot read) use them by name.
 */
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  /** Never sent: what a socket reports when it dropped without a close frame. */
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
} as const

export interface ErrorSpec {
  /** JSON-RPC `error.code`; `null` when the error never travels over JSON-RPC. */
  readonly rpc: number | null
  readonly base: ErrorBase
  readonly message: string
  /**
   * WebSocket close code sent when this error ends the connection (after its answer, or as the
   * close reason alone). Not every answer with the code ends the connection: docs/errors.md says
   * when one does.
   */
  readonly close?: number
}

export const ERROR_REGISTRY = {
  // JSON-RPC 2.0 standard errors.
  PARSE_ERROR: { rpc: -32700, base: 'TypeError', message: 'Parse error: the frame is not valid JSON' },
  INVALID_REQUEST: { rpc: -32600, base: 'TypeError', message: 'Invalid Request: not a JSON-RPC 2.0 request object' },
  METHOD_NOT_FOUND: { rpc: -32601, base: 'TypeError', message: 'Method not found' },
  INVALID_PARAMS: { rpc: -32602, base: 'TypeError', message: 'Invalid params' },
  INTERNAL_ERROR: { rpc: -32603, base: 'Error', message: 'Internal error', close: WS_CLOSE.POLICY_VIOLATION },
  BATCH_TOO_LARGE: { rpc: -32600, base: 'RangeError', message: 'Batch has more entries than the node accepts' },
  FRAME_TOO_COMPLEX: { rpc: -32600, base: 'RangeError', message: 'The frame nests deeper or holds more values than the node parses' },
  INVALID_PUBLIC_KEY: {
    rpc: -32602,
    base: 'TypeError',
    message: 'Public key must be secp256k1 hex: 66 chars compressed (02/03) or 130 chars uncompressed (04)',
  },

  // Authentication.
  AUTH_REQUIRED: { rpc: -32001, base: 'Error', message: 'Authenticate before calling this method' },
  INVALID_CREDENTIALS: {
    rpc: -32002,
    base: 'Error',
    message: 'Signature does not match the public key and nonce',
    close: WS_CLOSE.POLICY_VIOLATION,
  },
  NONCE_EXPIRED: { rpc: -32003, base: 'Error', message: 'Nonce expired: fetch a new one', close: WS_CLOSE.POLICY_VIOLATION },
  NONCE_UNKNOWN: {
    rpc: -32004,
    base: 'Error',
    message: 'No nonce was issued to this connection for this public key',
    close: WS_CLOSE.POLICY_VIOLATION,
  },
  ALREADY_AUTHENTICATED: { rpc: -32005, base: 'Error', message: 'This connection is already authenticated' },
  FORBIDDEN: { rpc: -32006, base: 'Error', message: "The circle's policy does not allow this caller to do that" },

  // Script execution.
  SCRIPT_ERROR: { rpc: -32010, base: 'Error', message: 'The script threw an error' },
  SCRIPT_TIMEOUT: { rpc: -32011, base: 'RangeError', message: 'The script ran past its time limit' },
  SCRIPT_MEMORY: { rpc: -32012, base: 'RangeError', message: 'The script ran past its memory limit' },
  OUTPUT_TOO_LARGE: { rpc: -32013, base: 'RangeError', message: 'The script result or its logs are over the size limit' },
  SCRIPT_TOO_LARGE: { rpc: -32014, base: 'RangeError', message: 'The script is over the size limit' },
  WORKER_CRASHED: { rpc: -32015, base: 'Error', message: 'The worker running this task crashed; the task was not completed' },

  // Storage.
  INVALID_NAME: {
    rpc: -32020,
    base: 'TypeError',
    message: 'Document name must be 1-200 bytes, relative, with no "..", "\\", NUL or control characters',
  },
  INVALID_DOCUMENT: { rpc: -32021, base: 'TypeError', message: 'Document value must be JSON-serialisable' },
  QUOTA_EXCEEDED: { rpc: -32022, base: 'RangeError', message: 'Storage quota exceeded' },
  STORAGE_ERROR: { rpc: -32023, base: 'Error', message: 'Storage failed (disk full or unreadable)' },

  // Capacity and lifecycle.
  OVERLOADED: {
    rpc: -32030,
    base: 'RangeError',
    message: 'The node is over capacity for this context: retry later',
    close: WS_CLOSE.TRY_AGAIN_LATER,
  },
  PAYLOAD_TOO_LARGE: { rpc: -32031, base: 'RangeError', message: 'Frame is over the size limit', close: WS_CLOSE.MESSAGE_TOO_BIG },
  TOO_MANY_IN_FLIGHT: { rpc: -32032, base: 'RangeError', message: 'Too many requests in flight on this connection' },
  IDLE_TIMEOUT: { rpc: -32033, base: 'Error', message: 'Connection idle for too long', close: WS_CLOSE.GOING_AWAY },
  SHUTTING_DOWN: { rpc: -32034, base: 'Error', message: 'The node is shutting down', close: WS_CLOSE.GOING_AWAY },
  SLOW_CONSUMER: {
    rpc: -32035,
    base: 'RangeError',
    message: 'The client does not read its answers: too much is waiting to be sent',
    close: WS_CLOSE.POLICY_VIOLATION,
  },
  RATE_LIMITED: {
    rpc: -32036,
    base: 'RangeError',
    message: 'Over a load limit (or quarantined for crashing the sandbox): retry after data.retry_after_ms',
    close: WS_CLOSE.POLICY_VIOLATION,
  },
  UNKNOWN_CIRCLE: { rpc: -32040, base: 'Error', message: 'No circle with that public key is served here' },

  // Calls between contexts (`call(peer, script)` in a script).
  CALL_CYCLE: { rpc: -32050, base: 'Error', message: 'The called context is already on this call chain' },
  CALL_DEPTH_EXCEEDED: { rpc: -32051, base: 'RangeError', message: 'Calls are nested deeper than the node allows' },
  CALL_BUDGET_EXCEEDED: {
    rpc: -32052,
    base: 'RangeError',
    message: 'Over a call budget: calls in flight from one run, or runs in one workflow',
  },
  CALL_CANCELLED: { rpc: -32053, base: 'Error', message: 'The calling run ended before this call started; it was not run' },
  RUN_INTERRUPTED: {
    rpc: -32054,
    base: 'Error',
    message: 'The run was waiting on a call when another run aborted the sandbox state it was suspended in; it did not complete',
  },

  // Cross-node work (Redis).
  UNAVAILABLE: {
    rpc: -32041,
    base: 'Error',
    message: 'Cross-node work is unavailable (the node cannot reach Redis); the task was not queued, retrying is safe',
  },
  TASK_EXPIRED: {
    rpc: -32042,
    base: 'Error',
    message: 'No node answered the task by its deadline; it may or may not have run',
  },
  // Live updates (subscribe).
  RESYNC_REQUIRED: {
    rpc: -32060,
    base: 'Error',
    message: 'Notifications since that point are no longer known: read again, then subscribe from data.epoch and data.seq',
  },
  TOO_MANY_SUBSCRIPTIONS: {
    rpc: -32061,
    base: 'RangeError',
    message: 'Too many subscriptions: data.limit names the bound (socket, address or context)',
  },

  // Refusals of an HTTP request or WebSocket upgrade, before any JSON-RPC: the HTTP answer's JSON body carries the code.
  HOST_NOT_ALLOWED: { rpc: null, base: 'Error', message: 'The Host header names no domain of this node' },
  ORIGIN_NOT_ALLOWED: { rpc: null, base: 'Error', message: 'Browser pages of this origin may not open connections here' },
  NOT_FOUND: { rpc: null, base: 'Error', message: 'No such path: endpoints lists those served here' },
  METHOD_NOT_ALLOWED: { rpc: null, base: 'Error', message: 'This HTTP method is not served here: the Allow header lists those that are' },

  // Raised by the client library on the caller's side (never sent by a node).
  CONNECT_FAILED: { rpc: null, base: 'Error', message: 'Could not open a connection to the node' },
  CONNECTION_CLOSED: { rpc: null, base: 'Error', message: 'The connection closed before the answer came' },
  REQUEST_TIMEOUT: { rpc: null, base: 'Error', message: 'No answer within the request timeout' },
  ABORTED: { rpc: null, base: 'Error', message: 'The request was aborted by its signal' },
  MALFORMED_ANSWER: { rpc: null, base: 'TypeError', message: 'The node sent an answer that is not what the protocol says' },
  SIGN_IN_MISMATCH: {
    rpc: null,
    base: 'Error',
    message: 'The node asked for a signature over a text that is not the sign-in message for the URL dialled; nothing was signed',
  },

  /** Never sent to a client: the node logs and counts a task or reply it refuses to act on. */
  QUEUE_MESSAGE_INVALID: {
    rpc: null,
    base: 'TypeError',
    message: 'A task or reply read from Redis is malformed or its MAC does not verify',
  },
  /** Never sent to a client: a node whose cluster secret is not the other nodes' refuses to serve and stops. */
  CLUSTER_SECRET_MISMATCH: {
    rpc: null,
    base: 'Error',
    message: "Redis holds a cluster secret check value this node's secret does not make: its secret is not the other nodes'",
  },

  // Local configuration and command line (never sent over JSON-RPC).
  CONFIG_INVALID: { rpc: null, base: 'TypeError', message: 'Configuration is invalid' },
  INVALID_OPTION: { rpc: null, base: 'TypeError', message: 'Invalid option' },
  KEY_FILE_INVALID: { rpc: null, base: 'TypeError', message: 'Key file is invalid' },
  USAGE: { rpc: null, base: 'TypeError', message: 'Invalid command line' },
  DB_LOCKED: { rpc: null, base: 'Error', message: 'The database path is in use by another process' },
  ADDRESS_IN_USE: { rpc: null, base: 'Error', message: 'A listener cannot bind its address: the port is in use' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_REGISTRY

export const ERROR_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[]

/** The codes whose error can end a connection: those the registry gives a close code. */
export type ClosingErrorCode = {
  [K in ErrorCode]: (typeof ERROR_REGISTRY)[K] extends { readonly close: number } ? K : never
}[ErrorCode]

/**
 * The WebSocket close code of an error that ends a connection.
 *
 * @example
 * ws.close(closeCodeOf('SHUTTING_DOWN'), 'SHUTTING_DOWN')   // 1001
 */
export function closeCodeOf(code: ClosingErrorCode): number {
  return (ERROR_REGISTRY[code] as ErrorSpec).close!
}

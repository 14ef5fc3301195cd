import type { AddressHex, PublicKeyHex } from '../identity/index.js'
import type { CirclesError, RpcErrorObject } from '../errors/index.js'

/** A JSON-RPC id: string, number, or null (docs/protocol.md: echoed exactly). */
export type JsonRpcId = string | number | null

/**
 * Who `fetch_nonce` and `authenticate` are for: a public key, or — for signers that expose only
 * an address, as browser wallets do — an Ethereum address. Exactly one of the two.
 */
export type ClaimParams = { readonly pubkey: PublicKeyHex; readonly address?: never } | { readonly address: AddressHex; readonly pubkey?: never }

/** Where in a context's notices a subscriber is: its log's epoch and the last seq it saw. */
export interface SubscribePosition {
  readonly epoch: string
  readonly seq: number
}

/** Params of each method, after validation (canonical keys and addresses). */
export interface MethodParams {
  fetch_nonce: ClaimParams
  authenticate: ClaimParams & { readonly signature: string }
  play: { readonly script: string; readonly timeout_ms?: number }
  /** Changes under `prefix`, events whose topic starts with one of `topics`; neither: everything. */
  subscribe: { readonly prefix?: string; readonly topics?: readonly string[]; readonly after?: SubscribePosition }
  unsubscribe: { readonly subscription: string }
}

/** What a run reports besides its output. */
export interface PlayResult {
  /** The completion value: a string as is, anything else as JSON (`""` for `undefined`). */
  readonly output: string
  /**
   * The completion value as JSON (`null` for `undefined` and other non-JSON values). Absent when
   * the value is a string or a BigInt: `output` is then the value itself, and sending it twice
   * would double the answer.
   */
  readonly result?: unknown
  /** Lines written by `print(...)`, in order. */
  readonly logs: readonly string[]
  /** True when `print` output went over the log limit and was cut. */
  readonly logs_truncated?: boolean
  readonly task_id: string
  /**
   * Milliseconds: waiting in the context's mailbox, running (from start to end, time waiting on
   * calls included), on the CPU, and suspended waiting on calls (`calls_ms`: sent by every node
   * of this version, absent from older ones).
   */
  readonly timings: { readonly queued_ms: number; readonly run_ms: number; readonly cpu_ms: number; readonly calls_ms?: number }
}

export interface MethodResults {
  fetch_nonce: { readonly nonce: string; readonly expires_at: number }
  authenticate: { readonly authenticated: true }
  play: PlayResult
  subscribe: { readonly subscription: string } & SubscribePosition
  unsubscribe: { readonly unsubscribed: boolean }
}

export type MethodName = keyof MethodParams

/** A validated method call: a discriminated union on `method`. */
export type Call = { [M in MethodName]: { readonly method: M; readonly params: MethodParams[M] } }[MethodName]

/** One entry of a parsed frame. */
export type FrameEntry =
  /** A request that expects an answer with `id`. */
  | { readonly type: 'call'; readonly id: JsonRpcId; readonly call: Call }
  /** A valid notification: execute it, answer nothing. */
  | { readonly type: 'notify'; readonly call: Call }
  /** Something to answer with an error. */
  | { readonly type: 'reject'; readonly id: JsonRpcId; readonly error: CirclesError }
  /** An invalid notification: JSON-RPC says it gets no answer at all. */
  | { readonly type: 'drop'; readonly error: CirclesError }

/** A parsed text frame: one request or a batch. */
export type ParsedFrame =
  | { readonly type: 'single'; readonly entry: FrameEntry }
  | { readonly type: 'batch'; readonly entries: readonly FrameEntry[] }

export interface SuccessResponse<R = unknown> {
  readonly jsonrpc: '2.0'
  readonly id: JsonRpcId
  readonly result: R
}

export interface ErrorResponse {
  readonly jsonrpc: '2.0'
  readonly id: JsonRpcId
  readonly error: RpcErrorObject
}

export type Response<R = unknown> = SuccessResponse<R> | ErrorResponse

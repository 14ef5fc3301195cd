import type { MethodName, MethodResults, PlayResult } from '../protocol/messages.js'
import { MalformedAnswerError, RpcError, type ErrorData } from './errors.js'

/** One entry of a frame from the node, read and checked against the protocol. */
export type Answer =
  | { readonly type: 'result'; readonly id: unknown; readonly result: unknown }
  | { readonly type: 'error'; readonly id: unknown; readonly error: RpcError | MalformedAnswerError }
  /** A notification from the node (live updates): checked by its method's reader. */
  | { readonly type: 'notification'; readonly method: string; readonly params: unknown }
  /** Not a JSON-RPC response at all: nothing can be matched to a request. */
  | { readonly type: 'garbage'; readonly what: string }

type Json = Record<string, unknown>

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function readError(value: unknown): RpcError | MalformedAnswerError {
  if (!isObject(value)) return new MalformedAnswerError('"error" is not an object')
  const { code, message, data } = value
  if (typeof code !== 'number' || !Number.isInteger(code)) return new MalformedAnswerError('"error.code" is not an integer')
  if (typeof message !== 'string') return new MalformedAnswerError('"error.message" is not a string')
  // A Circles node always names its error in data.code; without it nothing could match on it.
  if (!isObject(data) || typeof data['code'] !== 'string') return new MalformedAnswerError('"error.data.code" is not a string')
  return new RpcError(code, message, data as ErrorData)
}

function readEntry(value: unknown): Answer {
  if (!isObject(value) || value['jsonrpc'] !== '2.0') return { type: 'garbage', what: 'not a JSON-RPC 2.0 response object' }
  if (!Object.hasOwn(value, 'id')) {
    const method = value['method']
    return typeof method === 'string' ? { type: 'notification', method, params: value['params'] } : { type: 'garbage', what: 'a response without "id"' }
  }
  const id = value['id']
  const hasResult = Object.hasOwn(value, 'result')
  const hasError = Object.hasOwn(value, 'error')
  if (hasResult === hasError) return { type: 'error', id, error: new MalformedAnswerError('a response needs exactly one of "result" and "error"') }
  return hasResult ? { type: 'result', id, result: value['result'] } : { type: 'error', id, error: readError(value['error']) }
}

/** Parse one text frame from the node into answers. Never throws. */
export function readFrame(text: string): Answer[] {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return [{ type: 'garbage', what: 'a frame that is not JSON' }]
  }
  if (Array.isArray(value)) return value.length === 0 ? [{ type: 'garbage', what: 'an empty batch' }] : value.map(readEntry)
  return [readEntry(value)]
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function checkPlay(value: Json): string | undefined {
  if (typeof value['output'] !== 'string') return '"output" is not a string'
  // `result` is absent when the value is a string or a BigInt (`output` is the value then).
  const logs = value['logs']
  if (!Array.isArray(logs) || !logs.every((line) => typeof line === 'string')) return '"logs" is not an array of strings'
  if (value['logs_truncated'] !== undefined && typeof value['logs_truncated'] !== 'boolean') return '"logs_truncated" is not a boolean'
  if (typeof value['task_id'] !== 'string') return '"task_id" is not a string'
  const timings = value['timings']
  if (!isObject(timings) || !isFiniteNumber(timings['queued_ms']) || !isFiniteNumber(timings['run_ms']) || !isFiniteNumber(timings['cpu_ms'])) {
    return '"timings" needs numbers queued_ms, run_ms and cpu_ms'
  }
  if (timings['calls_ms'] !== undefined && !isFiniteNumber(timings['calls_ms'])) return '"timings.calls_ms" is not a number'
  return undefined
}

/**
 * The result of `method`, checked against its documented shape; a {@link MalformedAnswerError}
 * naming what is wrong otherwise.
 */
export function checkResult<M extends MethodName>(method: M, value: unknown): MethodResults[M] | MalformedAnswerError {
  if (!isObject(value)) return new MalformedAnswerError(`${method}: "result" is not an object`)
  let problem: string | undefined
  switch (method) {
    case 'fetch_nonce':
      if (typeof value['nonce'] !== 'string' || value['nonce'] === '') problem = '"nonce" is not a non-empty string'
      else if (!isFiniteNumber(value['expires_at'])) problem = '"expires_at" is not a number'
      break
    case 'authenticate':
      if (value['authenticated'] !== true) problem = '"authenticated" is not true'
      break
    case 'play':
      problem = checkPlay(value)
      break
    case 'subscribe':
      if (typeof value['subscription'] !== 'string') problem = '"subscription" is not a string'
      else if (typeof value['epoch'] !== 'string' || !Number.isSafeInteger(value['seq'])) problem = '"epoch" and "seq" are not a position'
      break
    case 'unsubscribe':
      if (typeof value['unsubscribed'] !== 'boolean') problem = '"unsubscribed" is not a boolean'
      break
  }
  return problem === undefined ? (value as unknown as MethodResults[M]) : new MalformedAnswerError(`${method}: ${problem}`)
}

/** What `GET /info` describes: the circle served at the port's `/`. */
export interface CircleInfo {
  readonly name: string
  readonly public_key: string
  readonly version: string
  readonly methods: readonly string[]
  /** The circle's policy: `run`, `write`, `call` and `subscribe`, as in docs/contexts.md. */
  readonly policy: { readonly run: unknown; readonly write: unknown; readonly call: unknown; readonly subscribe: unknown }
  /** Limits in force, each a number with its unit in the name. */
  readonly limits: Readonly<Record<string, number>>
  readonly [other: string]: unknown
}

/** Check a `GET /info` body. */
export function checkInfo(value: unknown): CircleInfo | MalformedAnswerError {
  if (!isObject(value)) return new MalformedAnswerError('info: not a JSON object')
  if (typeof value['name'] !== 'string') return new MalformedAnswerError('info: "name" is not a string')
  if (typeof value['public_key'] !== 'string') return new MalformedAnswerError('info: "public_key" is not a string')
  if (typeof value['version'] !== 'string') return new MalformedAnswerError('info: "version" is not a string')
  const methods = value['methods']
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) return new MalformedAnswerError('info: "methods" is not an array of strings')
  if (!isObject(value['policy'])) return new MalformedAnswerError('info: "policy" is not an object')
  const limits = value['limits']
  if (!isObject(limits) || !Object.values(limits).every(isFiniteNumber)) return new MalformedAnswerError('info: "limits" is not an object of numbers')
  return value as CircleInfo
}

export type { PlayResult }

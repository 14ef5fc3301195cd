import { circlesError, type CirclesError } from '../errors/index.js'
import type { FrameEntry, JsonRpcId, ParsedFrame } from './messages.js'
import { shapeExcess } from './frame-shape.js'
import { isMethodName, parseParams, type MethodLimits } from './methods.js'

export interface FrameLimits extends MethodLimits {
  readonly maxFrameBytes: number
  readonly maxBatchEntries: number
  /** Deepest nesting of arrays and objects, checked before parsing. */
  readonly maxFrameDepth: number
  /** Most JSON values in a frame, counted before parsing. */
  readonly maxFrameValues: number
}

const REQUEST_KEYS = new Set(['jsonrpc', 'method', 'params', 'id'])

function single(entry: FrameEntry): ParsedFrame {
  return { type: 'single', entry }
}

function reject(id: JsonRpcId, error: CirclesError): FrameEntry {
  return { type: 'reject', id, error }
}

/** A JSON-RPC id we can echo exactly: a string, a number that survives a JSON round trip, or null. */
function validId(value: unknown): value is JsonRpcId {
  if (value === null || typeof value === 'string') return true
  if (typeof value !== 'number' || !Number.isFinite(value)) return false
  // Integers past 2^53 were already rounded by JSON.parse: echoing them would not be exact.
  return !Number.isInteger(value) || Number.isSafeInteger(value)
}

/** Validate one request object (the element of a batch, or the whole frame). */
function parseEntry(value: unknown, limits: MethodLimits): FrameEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return reject(null, circlesError('INVALID_REQUEST', 'Invalid Request: expected an object'))
  }
  const obj = value as Record<string, unknown>
  const hasId = Object.hasOwn(obj, 'id')
  const idOk = !hasId || validId(obj['id'])
  // The id is echoed whenever it could be read; otherwise the answer carries id null (JSON-RPC §5).
  const id: JsonRpcId = hasId && idOk ? (obj['id'] as JsonRpcId) : null
  if (!idOk) {
    return reject(null, circlesError('INVALID_REQUEST', 'Invalid Request: "id" must be a string, a safe integer, a number or null'))
  }
  if (obj['jsonrpc'] !== '2.0') {
    return reject(id, circlesError('INVALID_REQUEST', 'Invalid Request: "jsonrpc" must be exactly "2.0"'))
  }
  const method = obj['method']
  if (typeof method !== 'string') {
    return reject(id, circlesError('INVALID_REQUEST', 'Invalid Request: "method" must be a string'))
  }
  for (const key of Object.keys(obj)) {
    if (!REQUEST_KEYS.has(key)) {
      return reject(id, circlesError('INVALID_REQUEST', `Invalid Request: unknown member "${key}"`, { field: key }))
    }
  }
  const params = obj['params']
  if (params !== undefined && (params === null || typeof params !== 'object')) {
    return reject(id, circlesError('INVALID_REQUEST', 'Invalid Request: "params" must be an object or an array'))
  }
  if (!isMethodName(method)) {
    const error = circlesError('METHOD_NOT_FOUND', `Method not found: ${method.slice(0, 64)}`)
    return hasId ? reject(id, error) : { type: 'drop', error }
  }
  const parsed = parseParams(method, params, limits)
  if (!parsed.ok) return hasId ? reject(id, parsed.error) : { type: 'drop', error: parsed.error }
  return hasId ? { type: 'call', id, call: parsed.call } : { type: 'notify', call: parsed.call }
}

/**
 * Turn one untrusted text frame into typed requests or coded errors. Never throws: whatever
 * arrives, the result says what to run and what to answer.
 *
 * @example
 * const frame = parseFrame('{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1+1"}}', limits)
 * // → { type: 'single', entry: { type: 'call', id: 1, call: { method: 'play', params: { script: '1+1' } } } }
 */
export function parseFrame(data: string | Buffer, limits: FrameLimits): ParsedFrame {
  const size = typeof data === 'string' ? data.length : data.byteLength
  if (size > limits.maxFrameBytes || (typeof data === 'string' && Buffer.byteLength(data) > limits.maxFrameBytes)) {
    return single(
      reject(null, circlesError('PAYLOAD_TOO_LARGE', `Frame is over ${limits.maxFrameBytes} bytes`, { limit: limits.maxFrameBytes })),
    )
  }
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const excess = shapeExcess(bytes, limits.maxFrameDepth, limits.maxFrameValues)
  if (excess !== undefined) {
    const limit = excess === 'depth' ? limits.maxFrameDepth : limits.maxFrameValues
    const what = excess === 'depth' ? `nests arrays and objects deeper than ${limit} levels` : `holds more than ${limit} values`
    return single(reject(null, circlesError('FRAME_TOO_COMPLEX', `The frame ${what}: refused before parsing`, { limit, shape: excess })))
  }
  let value: unknown
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'))
  } catch {
    return single(reject(null, circlesError('PARSE_ERROR')))
  }
  if (!Array.isArray(value)) return single(parseEntry(value, limits))
  if (value.length === 0) {
    return single(reject(null, circlesError('INVALID_REQUEST', 'Invalid Request: empty batch')))
  }
  if (value.length > limits.maxBatchEntries) {
    return single(
      reject(
        null,
        circlesError('BATCH_TOO_LARGE', `Batch has ${value.length} entries; at most ${limits.maxBatchEntries} are accepted`, {
          limit: limits.maxBatchEntries,
        }),
      ),
    )
  }
  return { type: 'batch', entries: value.map((item) => parseEntry(item, limits)) }
}

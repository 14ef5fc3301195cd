import { ERROR_REGISTRY, type ErrorCode, type ErrorSpec } from './registry.js'

/** Structured extra data carried by an error onto the wire as `error.data`. */
export type ErrorDetails = Record<string, unknown>

/** Fields every Circles error has, whatever its base class. */
export interface CirclesErrorFields {
  readonly code: ErrorCode
  readonly rpcCode: number | null
  readonly closeCode: number | undefined
  readonly details: ErrorDetails | undefined
}

export type CirclesError = Error & CirclesErrorFields

function defineClass<B extends ErrorConstructor>(Base: B, name: string) {
  const Cls = class extends (Base as ErrorConstructor) implements CirclesErrorFields {
    readonly code: ErrorCode
    readonly rpcCode: number | null
    readonly closeCode: number | undefined
    readonly details: ErrorDetails | undefined
    constructor(code: ErrorCode, message?: string, details?: ErrorDetails) {
      const spec: ErrorSpec = ERROR_REGISTRY[code]
      super(message ?? spec.message)
      this.code = code
      this.rpcCode = spec.rpc
      this.closeCode = spec.close
      this.details = details
    }
  }
  Object.defineProperty(Cls, 'name', { value: name })
  Object.defineProperty(Cls.prototype, 'name', { value: name, writable: true, configurable: true })
  return Cls
}

/**
 * A Circles error class. Declared rather than inferred: the inferred type carries V8's static
 * `Error` members, whose declaration needs Node's types, and the browser client's types must
 * stand without them.
 */
export type CirclesErrorClass = new (code: ErrorCode, message?: string, details?: ErrorDetails) => CirclesError

/** Base classes, so `instanceof TypeError` / `instanceof RangeError` hold where the registry says. */
export const CirclesGenericError: CirclesErrorClass = defineClass(Error, 'CirclesError')
export const CirclesTypeError: CirclesErrorClass = defineClass(TypeError, 'CirclesTypeError')
export const CirclesRangeError: CirclesErrorClass = defineClass(RangeError, 'CirclesRangeError')

const CLASSES = {
  Error: CirclesGenericError,
  TypeError: CirclesTypeError,
  RangeError: CirclesRangeError,
} as const

/**
 * Create the error registered under `code`.
 *
 * @example
 * throw circlesError('FORBIDDEN', 'only the owner may write')
 */
export function circlesError(code: ErrorCode, message?: string, details?: ErrorDetails): CirclesError {
  const Cls = CLASSES[ERROR_REGISTRY[code].base]
  // Coded errors are expected outcomes answered to clients, often on hot paths (a flood of bad
  // requests): capturing a stack trace for each would cost more than the rest of the answer.
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new Cls(code, message, details) as CirclesError
  } finally {
    Error.stackTraceLimit = limit
  }
}

export function isCirclesError(value: unknown): value is CirclesError {
  return (
    value instanceof CirclesGenericError || value instanceof CirclesTypeError || value instanceof CirclesRangeError
  )
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_REGISTRY, value)
}

/** The wire form of an error: JSON-RPC `error` member with `data.code`. */
export interface RpcErrorObject {
  code: number
  message: string
  data: { code: ErrorCode } & ErrorDetails
}

export function toRpcError(error: CirclesError): RpcErrorObject {
  return {
    code: error.rpcCode ?? ERROR_REGISTRY.INTERNAL_ERROR.rpc,
    message: error.message,
    data: { ...error.details, code: error.code },
  }
}

/**
 * The body of an HTTP error answer (a refused upgrade, an unknown path, an admin failure): the
 * code and message, then the details as members of their own — one shape for every HTTP error.
 *
 * @example
 * toHttpError(circlesError('NOT_FOUND', 'no such path', { endpoints: ['/info'] }))
 * // { code: 'NOT_FOUND', message: 'no such path', endpoints: ['/info'] }
 */
export interface HttpErrorBody {
  code: ErrorCode
  message: string
  [detail: string]: unknown
}

export function toHttpError(error: CirclesError): HttpErrorBody {
  return { ...error.details, code: error.code, message: error.message }
}

/** Turn anything thrown into a Circles error; unknown failures become INTERNAL_ERROR without leaking details. */
export function asCirclesError(value: unknown): CirclesError {
  if (isCirclesError(value)) return value
  return circlesError('INTERNAL_ERROR')
}

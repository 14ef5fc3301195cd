export { ERROR_REGISTRY, ERROR_CODES, type ErrorCode, type ErrorSpec, type ErrorBase } from './registry.js'
export {
  circlesError,
  isCirclesError,
  isErrorCode,
  asCirclesError,
  toRpcError,
  CirclesGenericError,
  CirclesTypeError,
  CirclesRangeError,
  type CirclesError,
  type ErrorDetails,
  type RpcErrorObject,
} from './circles-error.js'

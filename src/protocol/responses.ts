import { toRpcError, type CirclesError } from '../errors/index.js'
import type { ErrorResponse, JsonRpcId, SuccessResponse } from './messages.js'

export function successResponse<R>(id: JsonRpcId, result: R): SuccessResponse<R> {
  return { jsonrpc: '2.0', id, result }
}

export function errorResponse(id: JsonRpcId, error: CirclesError): ErrorResponse {
  return { jsonrpc: '2.0', id, error: toRpcError(error) }
}

import { toRpcError, type CirclesError } from '../errors/index.js'
import type { ErrorResponse, JsonRpcId } from './messages.js'

export function errorResponse(id: JsonRpcId, error: CirclesError): ErrorResponse {
  return { jsonrpc: '2.0', id, error: toRpcError(error) }
}

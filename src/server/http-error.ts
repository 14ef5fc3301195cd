import type { IncomingMessage, ServerResponse } from 'node:http'
import { toHttpError, type CirclesError } from '../errors/index.js'

/**
 * Answer an HTTP request with a coded error. Every HTTP error answer of a node has this one body
 * shape, `{ code, message, ...details }` (docs/errors.md, "HTTP error answers"); a HEAD request
 * gets the headers alone.
 */
export function answerHttpError(res: ServerResponse, status: number, error: CirclesError, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(toHttpError(error))
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end((res as ServerResponse & { req: IncomingMessage }).req.method === 'HEAD' ? undefined : text)
}

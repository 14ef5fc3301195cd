import { ERROR_CODES, ERROR_REGISTRY, type ErrorCode } from '../src/errors/index.js'

/** JSON-RPC error codes the node may send: those of its error registry. */
const RPC_CODES: ReadonlySet<number> = new Set<number>(ERROR_CODES.map((code) => ERROR_REGISTRY[code].rpc).filter((rpc): rpc is NonNullable<typeof rpc> => rpc !== null))

/**
 * WebSocket close codes the node may close a socket with: those of the error registry, 1013
 * (authenticate while the verifier is overloaded) and 1007 (a text frame that is not UTF-8, from
 * the WebSocket layer) — docs/errors.md lists them.
 */
export const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set(
  ERROR_CODES.map((code) => (ERROR_REGISTRY[code] as { close?: number }).close).filter((c): c is number => c !== undefined).concat([1013, 1007]),
)

function isId(value: unknown): boolean {
  return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

/**
 * What is wrong with one JSON-RPC response object (undefined: nothing). `ids` holds the ids the
 * client could have sent (as JSON text), for the echo check.
 */
export function responseProblem(value: unknown, ids: ReadonlySet<string>): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'a response that is not an object'
  const r = value as Record<string, unknown>
  const keys = Object.keys(r).sort().join(',')
  if (keys !== 'id,jsonrpc,result' && keys !== 'error,id,jsonrpc') return `members ${keys}`
  if (r['jsonrpc'] !== '2.0') return 'jsonrpc is not "2.0"'
  if (!isId(r['id'])) return `an id that is no JSON-RPC id: ${JSON.stringify(r['id'])}`
  if (r['id'] !== null && !ids.has(JSON.stringify(r['id']))) return `an id that was never sent: ${JSON.stringify(r['id'])}`
  if ('error' in r) {
    const e = r['error'] as Record<string, unknown> | null
    if (e === null || typeof e !== 'object') return 'error is not an object'
    if (typeof e['code'] !== 'number' || !RPC_CODES.has(e['code'])) return `error.code ${String(e['code'])} is not a documented code`
    if (typeof e['message'] !== 'string') return 'error.message is not a string'
    const data = e['data'] as Record<string, unknown> | undefined
    const code = data?.['code']
    if (typeof code !== 'string' || !(ERROR_CODES as readonly string[]).includes(code)) return `error.data.code ${String(code)} is not a documented code`
    if (ERROR_REGISTRY[code as ErrorCode].rpc !== e['code']) return `error.code ${e['code']} does not match data.code ${code}`
    if (code === 'RATE_LIMITED' && typeof data!['retry_after_ms'] !== 'number') return 'RATE_LIMITED without retry_after_ms'
  }
  return undefined
}

/** What is wrong with one message from the node (a response, or a batch's array of them). */
export function messageProblem(text: string, ids: ReadonlySet<string>): string | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return `not JSON: ${text.slice(0, 80)}`
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return 'an empty array'
    for (const item of value) {
      const problem = responseProblem(item, ids)
      if (problem !== undefined) return `in a batch answer: ${problem}`
    }
    return undefined
  }
  return responseProblem(value, ids)
}

/** What is wrong with a `play` answer's result or error data (beyond the envelope). */
export function playProblem(value: Record<string, unknown>): string | undefined {
  if ('result' in value) {
    const result = value['result'] as Record<string, unknown>
    if (typeof result['output'] !== 'string') return 'play result without output'
    if (!Array.isArray(result['logs']) || !result['logs'].every((l) => typeof l === 'string')) return 'play result without logs'
    if (typeof result['task_id'] !== 'string' || typeof result['timings'] !== 'object') return 'play result without task_id or timings'
    return undefined
  }
  const data = (value['error'] as { data: Record<string, unknown> }).data
  if ('task_id' in data && !Array.isArray(data['logs'])) return 'a run error without logs'
  return undefined
}

import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import { normalizePublicKey, parseAddress } from '../identity/index.js'
import type { Call, ClaimParams, MethodName } from './messages.js'

export interface MethodLimits {
  readonly maxScriptBytes: number
}

type Failure = { ok: false; error: CirclesError }
type ParamsResult = { ok: true; call: Call } | Failure

const SIGNATURE_RE = /^(?:0x)?[0-9a-fA-F]{130}$/
const MAX_TIMEOUT_MS = 2_147_483_647

export const METHOD_NAMES: readonly MethodName[] = ['fetch_nonce', 'authenticate', 'play']

export function isMethodName(value: string): value is MethodName {
  return value === 'fetch_nonce' || value === 'authenticate' || value === 'play'
}

function invalid(message: string, field?: string): Failure {
  return { ok: false, error: circlesError('INVALID_PARAMS', message, field === undefined ? undefined : { field }) }
}

/** Params must be an object whose keys are all in `allowed` (unknown keys are an error, not ignored). */
function checkObject(
  method: MethodName,
  params: unknown,
  allowed: readonly string[],
): { ok: true; value: Record<string, unknown> } | Failure {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return invalid(`${method}: params must be an object`)
  }
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) return invalid(`${method}: unknown param "${key}"`, key)
  }
  return { ok: true, value: params as Record<string, unknown> }
}

function pubkeyParam(method: MethodName, value: unknown): string | Failure {
  if (typeof value !== 'string') return invalid(`${method}: "pubkey" must be a string`, 'pubkey')
  try {
    return normalizePublicKey(value)
  } catch (error) {
    if (isCirclesError(error)) return { ok: false, error: circlesError(error.code, error.message, { field: 'pubkey' }) }
    throw error
  }
}

/** `{ pubkey }` or `{ address }`, exactly one, in canonical form. */
function claimParams(method: MethodName, p: Record<string, unknown>): ClaimParams | Failure {
  const hasPubkey = p['pubkey'] !== undefined
  const hasAddress = p['address'] !== undefined
  if (hasPubkey === hasAddress) {
    return invalid(`${method}: give exactly one of "pubkey" (secp256k1 hex) or "address" (0x + 40 hex)`, hasPubkey ? 'address' : 'pubkey')
  }
  if (hasPubkey) {
    const pubkey = pubkeyParam(method, p['pubkey'])
    return typeof pubkey === 'string' ? { pubkey } : pubkey
  }
  const address = parseAddress(p['address'])
  if (address === undefined) return invalid(`${method}: "address" must be an Ethereum address: 0x + 40 hex`, 'address')
  return { address }
}

/** SCRIPT_TOO_LARGE when `script` is over `maxBytes` in UTF-8: the one size rule of `play` and `call`. */
export function scriptSizeError(script: string, maxBytes: number, what: string): CirclesError | undefined {
  if (script.length <= maxBytes && Buffer.byteLength(script) <= maxBytes) return undefined
  return circlesError('SCRIPT_TOO_LARGE', `${what}: script is over ${maxBytes} bytes`, { limit: maxBytes })
}

/**
 * Validate the params of `method` and return the typed call, or the coded error to answer.
 * Unknown methods are the caller's concern (METHOD_NOT_FOUND); this never throws for bad input.
 */
export function parseParams(method: MethodName, params: unknown, limits: MethodLimits): ParamsResult {
  switch (method) {
    case 'fetch_nonce': {
      const checked = checkObject(method, params, ['pubkey', 'address'])
      if (!checked.ok) return checked
      const claim = claimParams(method, checked.value)
      if ('ok' in claim) return claim
      return { ok: true, call: { method, params: claim } }
    }
    case 'authenticate': {
      const checked = checkObject(method, params, ['pubkey', 'address', 'signature'])
      if (!checked.ok) return checked
      const p = checked.value
      const claim = claimParams(method, p)
      if ('ok' in claim) return claim
      const signature = p['signature']
      if (typeof signature !== 'string' || !SIGNATURE_RE.test(signature)) {
        return invalid('authenticate: "signature" must be 65 bytes r‖s‖v as hex (optional 0x)', 'signature')
      }
      return { ok: true, call: { method, params: { ...claim, signature } } }
    }
    case 'play': {
      const checked = checkObject(method, params, ['script', 'timeout_ms'])
      if (!checked.ok) return checked
      const p = checked.value
      const script = p['script']
      if (typeof script !== 'string') return invalid('play: "script" must be a string', 'script')
      const tooLarge = scriptSizeError(script, limits.maxScriptBytes, 'play')
      if (tooLarge !== undefined) return { ok: false, error: tooLarge }
      const timeout = p['timeout_ms']
      if (timeout === undefined) return { ok: true, call: { method, params: { script } } }
      if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
        return invalid('play: "timeout_ms" must be a positive integer', 'timeout_ms')
      }
      return { ok: true, call: { method, params: { script, timeout_ms: timeout } } }
    }
  }
}

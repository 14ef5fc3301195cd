import { DEFAULTS, isPositiveInteger } from '../config/index.js'
import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import { isSignatureHex, normalizePublicKey, parseAddress } from '../identity/index.js'
import { hasLoneSurrogate } from '../storage/index.js'
import type { Call, ClaimParams, MethodName, MethodParams, SubscribePosition } from './messages.js'

export interface MethodLimits {
  readonly maxScriptBytes: number
}

type Failure = { ok: false; error: CirclesError }
type ParamsResult = { ok: true; call: Call } | Failure

const MAX_TIMEOUT_MS = 2_147_483_647
const EPOCH_RE = /^[0-9a-f]{1,64}$/
/** Subscription ids are the node's own (`s` and a number); anything longer names none. */
const MAX_SUBSCRIPTION_ID_CHARS = 32

/** Every method, once: the compiler holds this table to MethodParams (no method missing, none extra). */
const METHODS: { readonly [M in MethodName]: true } = { fetch_nonce: true, authenticate: true, play: true, subscribe: true, unsubscribe: true }

/** The methods a node serves, in the order `/info` lists them. */
export const METHOD_NAMES = Object.keys(METHODS) as readonly MethodName[]

export function isMethodName(value: string): value is MethodName {
  return Object.hasOwn(METHODS, value)
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

/** A document-name prefix or topic prefix: a string of at most MAX_NAME_BYTES with a UTF-8 form. */
function prefixParam(method: MethodName, value: unknown, field: string): string | Failure {
  if (typeof value !== 'string') return invalid(`${method}: "${field}" must be a string`, field)
  if (value.length > DEFAULTS.MAX_NAME_BYTES || Buffer.byteLength(value) > DEFAULTS.MAX_NAME_BYTES || hasLoneSurrogate(value)) {
    return invalid(`${method}: "${field}" must be valid Unicode of at most ${DEFAULTS.MAX_NAME_BYTES} bytes`, field)
  }
  return value
}

function subscribeParams(p: Record<string, unknown>): MethodParams['subscribe'] | Failure {
  const params: { prefix?: string; topics?: string[]; after?: SubscribePosition } = {}
  if (p['prefix'] !== undefined) {
    const prefix = prefixParam('subscribe', p['prefix'], 'prefix')
    if (typeof prefix !== 'string') return prefix
    params.prefix = prefix
  }
  const topics = p['topics']
  if (topics !== undefined) {
    if (!Array.isArray(topics) || topics.length === 0 || topics.length > DEFAULTS.SUBSCRIPTION_TOPICS) {
      return invalid(`subscribe: "topics" must be an array of 1 to ${DEFAULTS.SUBSCRIPTION_TOPICS} topic prefixes`, 'topics')
    }
    params.topics = []
    for (const [i, topic] of topics.entries()) {
      const checked = prefixParam('subscribe', topic, `topics[${i}]`)
      if (typeof checked !== 'string') return checked
      params.topics.push(checked)
    }
  }
  const after = p['after']
  if (after !== undefined) {
    const checked = checkObject('subscribe', after, ['epoch', 'seq'])
    if (!checked.ok) return invalid('subscribe: "after" must be { epoch, seq }', 'after')
    const { epoch, seq } = checked.value
    if (typeof epoch !== 'string' || !EPOCH_RE.test(epoch)) return invalid('subscribe: "after.epoch" must be an epoch as the node sent it', 'after.epoch')
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return invalid('subscribe: "after.seq" must be a non-negative integer', 'after.seq')
    params.after = { epoch, seq }
  }
  return params
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
      if (!isSignatureHex(signature)) {
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
      if (!isPositiveInteger(timeout, MAX_TIMEOUT_MS)) {
        return invalid('play: "timeout_ms" must be a positive integer', 'timeout_ms')
      }
      return { ok: true, call: { method, params: { script, timeout_ms: timeout } } }
    }
    case 'subscribe': {
      const checked = checkObject(method, params ?? {}, ['prefix', 'topics', 'after'])
      if (!checked.ok) return checked
      const parsed = subscribeParams(checked.value)
      return 'ok' in parsed ? parsed : { ok: true, call: { method, params: parsed } }
    }
    case 'unsubscribe': {
      const checked = checkObject(method, params, ['subscription'])
      if (!checked.ok) return checked
      const subscription = checked.value['subscription']
      if (typeof subscription !== 'string' || subscription === '' || subscription.length > MAX_SUBSCRIPTION_ID_CHARS) {
        return invalid('unsubscribe: "subscription" must be the id subscribe answered', 'subscription')
      }
      return { ok: true, call: { method, params: { subscription } } }
    }
  }
}

import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import { parsePublicKey, type PublicKeyHex } from '../identity/index.js'

/**
 * Who may run scripts in a context (or, as `call`, run scripts there that call out): anyone
 * (anonymous callers included), any authenticated caller, only the owner, or the owner plus
 * listed keys.
 */
export type RunRule = 'anonymous' | 'authenticated' | 'owner' | readonly PublicKeyHex[]
/** Who may write (save_data / delete_data): the owner, any authenticated caller, or the owner plus listed keys. */
export type WriteRule = 'authenticated' | 'owner' | readonly PublicKeyHex[]

/**
 * A context's policy. The owner (caller key = context key) may always run, write, call out
 * and subscribe. `call` says whose scripts may use the context's authority: a script that calls
 * another context (`call(peer, script)`) calls as this context, so being allowed to run scripts
 * here is not enough. `subscribe` says who may watch the context's changes and events; it takes
 * the forms of `run`, and a policy given without it follows `run`.
 */
export interface Policy {
  readonly run: RunRule
  readonly write: WriteRule
  readonly call: RunRule
  readonly subscribe: RunRule
}

/**
 * The defaults of docs/contexts.md ("Policy"): any authenticated caller may run scripts and
 * subscribe; only the owner writes and calls out.
 */
export const DEFAULT_POLICY: Policy = Object.freeze({ run: 'authenticated', write: 'owner', call: 'owner', subscribe: 'authenticated' })

const POLICY_KEYS = ['run', 'write', 'call', 'subscribe']

function keyList(value: unknown[], field: string): PublicKeyHex[] {
  return value.map((item, i) => {
    try {
      return parsePublicKey(item)
    } catch (error) {
      if (isCirclesError(error)) throw circlesError('CONFIG_INVALID', `${field}[${i}]: ${error.message}`, { field: `${field}[${i}]` })
      throw error
    }
  })
}

/**
 * Validate a policy given as JSON (`circles.json` or a stored `config/policy.json`). Missing
 * members take the defaults (`subscribe`: the value of `run`); anything unknown or malformed is
 * CONFIG_INVALID naming the field.
 *
 * @example
 * parsePolicy({ run: 'anonymous' }, 'circles[0].policy') // → { run: 'anonymous', write: 'owner', call: 'owner', subscribe: 'anonymous' }
 */
export function parsePolicy(value: unknown, field = 'policy'): Policy {
  if (value === undefined) return DEFAULT_POLICY
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw circlesError('CONFIG_INVALID', `${field} must be an object`, { field })
  }
  for (const key of Object.keys(value)) {
    if (!POLICY_KEYS.includes(key)) {
      throw circlesError('CONFIG_INVALID', `${field}.${key} is not a policy setting (${POLICY_KEYS.join(', ')})`, { field: `${field}.${key}` })
    }
  }
  const {
    run = DEFAULT_POLICY.run,
    write = DEFAULT_POLICY.write,
    call = DEFAULT_POLICY.call,
    subscribe,
  } = value as { run?: unknown; write?: unknown; call?: unknown; subscribe?: unknown }
  const parsedRun = runRule(run, `${field}.run`)
  let parsedWrite: WriteRule
  if (Array.isArray(write)) parsedWrite = keyList(write, `${field}.write`)
  else if (write === 'authenticated' || write === 'owner') parsedWrite = write
  else {
    throw circlesError('CONFIG_INVALID', `${field}.write must be "owner", "authenticated" or an array of public keys`, {
      field: `${field}.write`,
    })
  }
  return Object.freeze({
    run: parsedRun,
    write: parsedWrite,
    call: runRule(call, `${field}.call`),
    subscribe: subscribe === undefined ? parsedRun : runRule(subscribe, `${field}.subscribe`),
  })
}

/** A `run`, `call` or `subscribe` rule as given in JSON. */
function runRule(value: unknown, field: string): RunRule {
  if (Array.isArray(value)) return keyList(value, field)
  if (value === 'anonymous' || value === 'authenticated' || value === 'owner') return value
  throw circlesError('CONFIG_INVALID', `${field} must be "anonymous", "authenticated", "owner" or an array of public keys`, { field })
}

/** May `caller` ('' for an anonymous caller) run scripts in the context owned by `owner`? */
export function canRun(policy: Policy, caller: PublicKeyHex | '', owner: PublicKeyHex): boolean {
  return admits(policy.run, caller, owner)
}

/**
 * May scripts that `caller` runs in the context owned by `owner` call other contexts (as that
 * context)?
 */
export function canCall(policy: Policy, caller: PublicKeyHex | '', owner: PublicKeyHex): boolean {
  return admits(policy.call, caller, owner)
}

/** May `caller` subscribe to the changes and events of the context owned by `owner`? */
export function canSubscribe(policy: Policy, caller: PublicKeyHex | '', owner: PublicKeyHex): boolean {
  return admits(policy.subscribe, caller, owner)
}

function admits(rule: RunRule, caller: PublicKeyHex | '', owner: PublicKeyHex): boolean {
  if (caller === owner) return true
  if (rule === 'anonymous') return true
  if (caller === '') return false
  if (rule === 'authenticated') return true
  if (rule === 'owner') return false
  return rule.includes(caller)
}

/**
 * The refusal of a caller a rule does not admit (`what` it may not do: "run scripts",
 * "subscribe"): AUTH_REQUIRED tells an anonymous caller that authenticating may help, FORBIDDEN
 * tells an authenticated one that it will not.
 */
export function refusal(caller: PublicKeyHex | '', what: string): CirclesError {
  return caller === ''
    ? circlesError('AUTH_REQUIRED', 'This circle does not admit anonymous callers: authenticate first')
    : circlesError('FORBIDDEN', `The circle's policy does not let this caller ${what}`)
}

/** What a caller the run rule refuses is answered. */
export function runRefusal(caller: PublicKeyHex | ''): CirclesError {
  return refusal(caller, 'run scripts')
}

/** May `caller` write documents in the context owned by `owner`? Anonymous callers never write. */
export function canWrite(policy: Policy, caller: PublicKeyHex | '', owner: PublicKeyHex): boolean {
  if (caller === owner) return true
  if (caller === '') return false
  const rule = policy.write
  if (rule === 'authenticated') return true
  if (rule === 'owner') return false
  return rule.includes(caller)
}

/** Whether a caller that has not authenticated may run scripts at all under this policy. */
export function admitsAnonymous(policy: Policy): boolean {
  return policy.run === 'anonymous'
}

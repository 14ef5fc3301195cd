import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import { DEFAULTS } from '../config/index.js'
import type { Notice } from '../live/index.js'
import { parsePolicy, type Policy } from '../policy/index.js'
import { isContextKey, isNodeId, macOf, sameMac } from './task-codec.js'

/**
 * The messages of cross-node live updates (docs/cluster.md, "Live updates across nodes"), sent
 * over Redis pub/sub. Each is `<mac> <json>`: the MAC is macOf(secret, 'feed', [json]) — the
 * cluster MAC of task-codec.ts, the same encoding rules, its own domain — over the exact JSON
 * text that follows, which is parsed only once the MAC verifies and then checked field by field.
 * Anything else is QUEUE_MESSAGE_INVALID (`reason: "feed"`), logged and counted, never acted on.
 *
 * On the watch channel (every node):
 *   w  a gateway watches context `c` (or refreshes its watch): `r` a request id the owner answers
 *      with a state, `a` the position the gateway's subscribers are at (what it missed is sent)
 *   u  a gateway no longer watches `c`
 *   o  a node (re)connected: gateways send their watches again (a new owner learns of them)
 * On a context's feed channel (its owner):
 *   n  notices `l` ([seq, notice] pairs, consecutive) of epoch `e`
 *   s  the owner's state: epoch `e`, last seq `q`, policy `p`; answering request `r` (or none),
 *      with what came after the request's position (`x`), or `g` when the log cannot tell
 */
export type FeedMessage =
  | { readonly k: 'w'; readonly c: string; readonly g: string; readonly r: string | null; readonly a: readonly [epoch: string, seq: number] | null }
  | { readonly k: 'u'; readonly c: string; readonly g: string }
  | { readonly k: 'o'; readonly g: string }
  | { readonly k: 'n'; readonly c: string; readonly e: string; readonly l: readonly FeedNotice[] }
  | {
      readonly k: 's'
      readonly c: string
      readonly e: string
      readonly q: number
      readonly p: Policy
      readonly r: string | null
      readonly g: boolean
      readonly x: readonly FeedNotice[] | null
    }

/** A numbered notice as it crosses Redis. */
export type FeedNotice = readonly [seq: number, notice: Notice]

const EPOCH = /^[0-9a-f]{16}$/
const REQUEST_ID = /^[0-9a-f]{16}$/

function invalid(why: string): CirclesError {
  return circlesError('QUEUE_MESSAGE_INVALID', `A live-update message read from Redis was refused: ${why}`, { reason: 'feed', why })
}

/** The text to publish for `message`. */
export function encodeFeedMessage(secret: string, message: FeedMessage): string {
  const json = JSON.stringify(message)
  return `${macOf(secret, 'feed', [json])} ${json}`
}

/** A message read from a channel, its MAC verified and every field checked; throws QUEUE_MESSAGE_INVALID. */
export function decodeFeedMessage(secret: string, text: unknown): FeedMessage {
  if (typeof text !== 'string') throw invalid('not text')
  if (text.length > DEFAULTS.MAX_QUEUE_ENTRY_BYTES) throw invalid('over the size cap')
  const space = text.indexOf(' ')
  if (space < 0) throw invalid('no MAC')
  const json = text.slice(space + 1)
  if (!sameMac(macOf(secret, 'feed', [json]), text.slice(0, space))) throw invalid('the MAC does not verify')
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    throw invalid('not JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('not an object')
  const m = value as Record<string, unknown>
  const node = (key: string): string => {
    if (!isNodeId(m[key])) throw invalid(`"${key}" is not a node id`)
    return m[key]
  }
  const context = (): string => {
    if (!isContextKey(m['c'])) throw invalid('"c" is not a context key')
    return m['c']
  }
  const epoch = (): string => {
    if (typeof m['e'] !== 'string' || !EPOCH.test(m['e'])) throw invalid('"e" is not an epoch')
    return m['e']
  }
  const request = (): string | null => {
    const r = m['r']
    if (r === null) return null
    if (typeof r !== 'string' || !REQUEST_ID.test(r)) throw invalid('"r" is not a request id')
    return r
  }
  switch (m['k']) {
    case 'w': {
      const a = m['a']
      let after: [string, number] | null = null
      if (a !== null) {
        if (!Array.isArray(a) || a.length !== 2 || typeof a[0] !== 'string' || !EPOCH.test(a[0]) || !isSeq(a[1])) throw invalid('"a" is not a position')
        after = [a[0], a[1]]
      }
      return { k: 'w', c: context(), g: node('g'), r: request(), a: after }
    }
    case 'u':
      return { k: 'u', c: context(), g: node('g') }
    case 'o':
      return { k: 'o', g: node('g') }
    case 'n':
      return { k: 'n', c: context(), e: epoch(), l: notices(m['l']) }
    case 's': {
      if (!isSeq(m['q'])) throw invalid('"q" is not a seq')
      if (typeof m['g'] !== 'boolean') throw invalid('"g" is not a boolean')
      let policy: Policy
      try {
        policy = parsePolicy(m['p'], 'p')
      } catch (error) {
        throw invalid(isCirclesError(error) ? `"p" is not a policy (${error.message})` : '"p" is not a policy')
      }
      return { k: 's', c: context(), e: epoch(), q: m['q'], p: policy, r: request(), g: m['g'], x: m['x'] === null ? null : notices(m['x']) }
    }
    default:
      throw invalid('unknown kind')
  }
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

/** Notices in order, with consecutive seqs. Values are JSON texts, carried as the owner made them (under the MAC). */
function notices(value: unknown): FeedNotice[] {
  if (!Array.isArray(value)) throw invalid('notices are not a list')
  const out: FeedNotice[] = []
  for (const item of value) {
    if (!Array.isArray(item) || item.length !== 2 || !isSeq(item[0]) || item[0] === 0) throw invalid('a notice is not [seq, notice]')
    if (out.length > 0 && item[0] !== out.at(-1)![0] + 1) throw invalid('notices are not consecutive')
    out.push([item[0], notice(item[1])])
  }
  return out
}

function notice(value: unknown): Notice {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('a notice is not an object')
  const n = value as Record<string, unknown>
  if (n['type'] === 'changed') {
    if (typeof n['name'] !== 'string' || (n['op'] !== 'save' && n['op'] !== 'delete')) throw invalid('a change needs a name and an op')
    if (n['value'] !== undefined && typeof n['value'] !== 'string') throw invalid("a change's value is not JSON text")
    if (n['truncated'] !== undefined && n['truncated'] !== true) throw invalid("a change's truncated is not true")
    return {
      type: 'changed',
      name: n['name'],
      op: n['op'],
      ...(n['value'] === undefined ? {} : { value: n['value'] as string }),
      ...(n['truncated'] === true ? { truncated: true as const } : {}),
    }
  }
  if (n['type'] === 'event') {
    if (typeof n['topic'] !== 'string' || typeof n['value'] !== 'string') throw invalid('an event needs a topic and a value')
    if (n['caller'] !== '' && !isContextKey(n['caller'])) throw invalid("an event's caller is not a key")
    return { type: 'event', topic: n['topic'], value: n['value'], caller: n['caller'] as string }
  }
  throw invalid('a notice of unknown type')
}

import { DEFAULTS, isPositiveInteger } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { hasLoneSurrogate } from './document-name.js'

/** What a page of `list_data` may ask for: `list_data(prefix, { limit, after })`. */
export interface ListOptions {
  /** Most names to return: an integer from 1 to {@link DEFAULTS.MAX_LIST_NAMES} (also the default). */
  readonly limit?: number
  /** Return only names sorting strictly after this one (the last name of the previous page). */
  readonly after?: string
}

/** {@link ListOptions} checked and with defaults filled in. */
export interface ListPageRequest {
  readonly limit: number
  readonly after: string | undefined
}

const OPTION_KEYS = new Set(['limit', 'after'])

/**
 * Check the options of one `list_data` page. Every problem is INVALID_NAME (the code of every
 * other bad `list_data` argument, so a script catches one code) with a message naming the option
 * and the rule: options that are not a plain object, an unknown key, a `limit` that is not an
 * integer from 1 to 1,000, an `after` that is not a string or has an unpaired surrogate.
 *
 * @example
 * parseListOptions(undefined)                      // { limit: 1000, after: undefined }
 * parseListOptions({ limit: 10, after: 'posts/9' }) // { limit: 10, after: 'posts/9' }
 * parseListOptions({ limit: 5000 })                 // throws INVALID_NAME
 */
export function parseListOptions(options: unknown): ListPageRequest {
  const max = DEFAULTS.MAX_LIST_NAMES
  if (options === undefined) return { limit: max, after: undefined }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw circlesError('INVALID_NAME', 'list_data: options must be an object { limit?, after? }')
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw circlesError('INVALID_NAME', `list_data: unknown option "${key.slice(0, 32)}" (limit, after)`)
  }
  const { limit = max, after } = options as { limit?: unknown; after?: unknown }
  if (!isPositiveInteger(limit, max)) {
    throw circlesError('INVALID_NAME', `list_data: limit must be an integer from 1 to ${max}`, { limit: max })
  }
  if (after !== undefined && typeof after !== 'string') throw circlesError('INVALID_NAME', 'list_data: after must be a string')
  if (after !== undefined && hasLoneSurrogate(after)) {
    throw circlesError('INVALID_NAME', 'list_data: after must be valid Unicode (it has an unpaired surrogate)')
  }
  return { limit, after }
}

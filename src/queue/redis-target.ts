import { circlesError } from '../errors/index.js'

/** Where the cross-node queue lives: one Redis server, or a Redis Cluster (its seed nodes). */
export type RedisTarget =
  | { readonly type: 'single'; readonly url: string }
  | {
      readonly type: 'cluster'
      readonly nodes: readonly { readonly host: string; readonly port: number }[]
      readonly username?: string
      readonly password?: string
      readonly tls: boolean
    }

const SCHEMES = new Set(['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:'])

interface ParsedUrl {
  readonly scheme: string
  readonly nodes: { host: string; port: number }[]
  readonly username: string
  readonly password: string
}

function hostPort(spec: string, text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(spec)
  const port = Number(match?.[2] ?? '6379')
  if (match === null || !(port >= 1 && port <= 65535)) throw circlesError('USAGE', `--redis-url "${redactRedisUrl(text).slice(0, 80)}": "${spec.slice(0, 40)}" is not host:port`)
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

/**
 * Read one URL ourselves: WHATWG URL refuses the comma-separated authority of the cluster form
 * (`redis+cluster://h1:p1,h2:p2`), and the single form is checked the same way.
 */
function parseOne(text: string): ParsedUrl {
  const match = /^([a-z+]+):\/\/([^/?#]*)([/?#].*)?$/i.exec(text)
  const scheme = `${match?.[1]?.toLowerCase() ?? ''}:`
  if (match === null) {
    throw circlesError('USAGE', `--redis-url "${redactRedisUrl(text).slice(0, 80)}" is not a URL (redis://host:port, rediss://…, redis+cluster://h1:p1,h2:p2)`)
  }
  if (!SCHEMES.has(scheme)) throw circlesError('USAGE', `--redis-url scheme must be redis, rediss, redis+cluster or rediss+cluster (got ${scheme.slice(0, 20)})`)
  const authority = match[2]!
  const at = authority.lastIndexOf('@')
  const credentials = at < 0 ? '' : authority.slice(0, at)
  const hosts = at < 0 ? authority : authority.slice(at + 1)
  if (hosts === '') throw circlesError('USAGE', `--redis-url "${redactRedisUrl(text).slice(0, 80)}" names no host`)
  const colon = credentials.indexOf(':')
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      throw circlesError('USAGE', '--redis-url: malformed %-escape in the credentials')
    }
  }
  return {
    scheme,
    nodes: hosts.split(',').map((spec) => hostPort(spec, text)),
    username: decode(colon < 0 ? credentials : credentials.slice(0, colon)),
    password: decode(colon < 0 ? '' : credentials.slice(colon + 1)),
  }
}

/**
 * Read `--redis-url` values: one `redis://` or `rediss://` URL (password and database in the
 * URL, as ioredis reads them) is a single server; a `redis+cluster://h1:p1,h2:p2` URL, or
 * several URLs, name seed nodes of a Redis Cluster.
 *
 * @example
 * parseRedisTarget(['redis://:secret@10.0.0.5:6379'])       // { type: 'single', … }
 * parseRedisTarget(['redis+cluster://10.0.0.5:7000,10.0.0.6:7000'])
 */
export function parseRedisTarget(urls: readonly string[]): RedisTarget {
  if (urls.length === 0) throw circlesError('USAGE', '--redis-url is required')
  const parsed = urls.map(parseOne)
  const clusterForm = parsed.some((u) => u.scheme.endsWith('+cluster:'))
  if (parsed.length === 1 && !clusterForm) {
    if (parsed[0]!.nodes.length > 1) throw circlesError('USAGE', '--redis-url: several hosts need the redis+cluster:// form')
    return { type: 'single', url: urls[0]! }
  }
  const tls = parsed.every((u) => u.scheme.startsWith('rediss'))
  if (!tls && parsed.some((u) => u.scheme.startsWith('rediss'))) throw circlesError('USAGE', '--redis-url: mix of TLS (rediss) and plain seed nodes')
  const first = parsed[0]!
  return {
    type: 'cluster',
    nodes: parsed.flatMap((u) => u.nodes),
    tls,
    ...(first.username === '' ? {} : { username: first.username }),
    ...(first.password === '' ? {} : { password: first.password }),
  }
}

/** A URL for logs: the password replaced. */
export function redactRedisUrl(text: string): string {
  return text.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@')
}

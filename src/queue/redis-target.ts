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

function parseOne(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw circlesError('USAGE', `--redis-url "${text.slice(0, 80)}" is not a URL (redis://host:port, rediss://…, redis+cluster://h1:p1,h2:p2)`)
  }
  if (!SCHEMES.has(url.protocol)) {
    throw circlesError('USAGE', `--redis-url scheme must be redis, rediss, redis+cluster or rediss+cluster (got ${url.protocol.slice(0, 20)})`)
  }
  return url
}

function hostPort(spec: string, text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(spec)
  const port = Number(match?.[2] ?? '6379')
  if (match === null || !(port >= 1 && port <= 65535)) throw circlesError('USAGE', `--redis-url "${text.slice(0, 80)}": "${spec.slice(0, 40)}" is not host:port`)
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
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
  const clusterForm = parsed.some((u) => u.protocol.endsWith('+cluster:'))
  if (parsed.length === 1 && !clusterForm) return { type: 'single', url: urls[0]! }
  const tls = parsed.every((u) => u.protocol.startsWith('rediss'))
  if (!tls && parsed.some((u) => u.protocol.startsWith('rediss'))) throw circlesError('USAGE', '--redis-url: mix of TLS (rediss) and plain seed nodes')
  const nodes: { host: string; port: number }[] = []
  for (const [i, url] of parsed.entries()) {
    const text = urls[i]!
    // new URL() keeps only the first host of "h1:p1,h2:p2": read the authority ourselves.
    const authority = text.replace(/^[a-z+]+:\/\//, '').split('/')[0]!.split('@').pop()!
    for (const spec of authority.split(',')) nodes.push(hostPort(spec, text))
    void url
  }
  const first = parsed[0]!
  return {
    type: 'cluster',
    nodes,
    tls,
    ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
    ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
  }
}

/** A URL for logs: the password replaced. */
export function redactRedisUrl(text: string): string {
  return text.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@')
}

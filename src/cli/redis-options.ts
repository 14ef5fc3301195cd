import { DEFAULTS } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import type { NodeRedisOptions } from '../node/index.js'
import { DEFAULT_PREFIX, isValidPrefix, parseRedisTarget } from '../queue/index.js'
import type { OptionSpec } from './run-cli.js'

/** Environment variable read for the cluster secret when `--cluster-secret` is not given. */
export const CLUSTER_SECRET_ENV = 'CIRCLES_CLUSTER_SECRET'

/** The command-line options of cross-node queueing (launch and worker). */
export const REDIS_OPTIONS = {
  'redis-url': { type: 'string', multiple: true, arg: 'URL', help: 'join nodes through Redis: redis://, rediss:// (TLS), redis+cluster://h1:p1,h2:p2' },
  'cluster-secret': { type: 'string', arg: 'S', help: `the secret every node shares, at least 16 bytes (default $${CLUSTER_SECRET_ENV})` },
  'redis-prefix': { type: 'string', arg: 'P', help: `key prefix, keeping clusters apart on one Redis (default ${DEFAULT_PREFIX})` },
  'queue-allowance-ms': { type: 'string', arg: 'N', help: `a task's wait for its owner beyond its wall limit (default ${DEFAULTS.QUEUE_ALLOWANCE_MS})` },
} as const satisfies OptionSpec

/**
 * Node options for Redis from the command line, or undefined when no `--redis-url` is given
 * (then nothing connects to Redis). The cluster secret is required: tasks and replies carry a
 * MAC made with it, since anyone who can write to Redis could otherwise act as any caller.
 */
export function redisOptionsFrom(
  command: string,
  values: { 'redis-url'?: string[]; 'redis-prefix'?: string; 'cluster-secret'?: string; 'queue-allowance-ms'?: string },
): NodeRedisOptions | undefined {
  const urls = values['redis-url'] ?? []
  if (urls.length === 0) {
    for (const flag of ['redis-prefix', 'cluster-secret', 'queue-allowance-ms'] as const) {
      if (values[flag] !== undefined) throw circlesError('USAGE', `${command}: --${flag} needs --redis-url`)
    }
    return undefined
  }
  const target = parseRedisTarget(urls)
  const prefix = values['redis-prefix'] ?? DEFAULT_PREFIX
  if (!isValidPrefix(prefix)) throw circlesError('USAGE', `${command}: --redis-prefix must be 1-64 of A-Z a-z 0-9 _ . : -`)
  const secret = values['cluster-secret'] ?? process.env[CLUSTER_SECRET_ENV]
  if (secret === undefined || Buffer.byteLength(secret) < 16) {
    throw circlesError('USAGE', `${command}: --redis-url needs a cluster secret of at least 16 bytes: --cluster-secret or $${CLUSTER_SECRET_ENV} (the same on every node)`)
  }
  let queueAllowanceMs: number | undefined
  if (values['queue-allowance-ms'] !== undefined) {
    queueAllowanceMs = Number(values['queue-allowance-ms'])
    if (!Number.isInteger(queueAllowanceMs) || queueAllowanceMs < 1) throw circlesError('USAGE', `${command}: --queue-allowance-ms must be a positive integer`)
  }
  return { target, secret, prefix, ...(queueAllowanceMs === undefined ? {} : { queueAllowanceMs }) }
}

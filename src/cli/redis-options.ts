import { readFileSync, statSync } from 'node:fs'
import { DEFAULTS, parsePositiveInteger } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import type { NodeRedisOptions } from '../node/index.js'
import { DEFAULT_PREFIX, isValidPrefix, parseRedisTarget } from '../queue/index.js'
import type { OptionSpec } from './run-cli.js'

/** Environment variable read for the cluster secret when no option gives it; removed from the environment once read. */
export const CLUSTER_SECRET_ENV = 'CIRCLES_CLUSTER_SECRET'

/** The command-line options of cross-node queueing (launch and worker). */
export const REDIS_OPTIONS = {
  'redis-url': { type: 'string', multiple: true, arg: 'URL', help: 'join nodes through Redis: redis://, rediss:// (TLS), redis+cluster://h1:p1,h2:p2' },
  'cluster-secret-file': { type: 'string', arg: 'FILE', help: `a file holding the secret every node shares, at least 16 bytes, mode 0600 (else $${CLUSTER_SECRET_ENV})` },
  'cluster-secret': { type: 'string', arg: 'S', help: 'the secret itself (shows in ps: prefer --cluster-secret-file)' },
  'redis-prefix': { type: 'string', arg: 'P', help: `key prefix, keeping clusters apart on one Redis (default ${DEFAULT_PREFIX})` },
  'queue-allowance-ms': { type: 'string', arg: 'N', help: `a task's wait for its owner beyond its wall limit (default ${DEFAULTS.QUEUE_ALLOWANCE_MS})` },
} as const satisfies OptionSpec

type RedisValues = { 'redis-url'?: string[]; 'redis-prefix'?: string; 'cluster-secret'?: string; 'cluster-secret-file'?: string; 'queue-allowance-ms'?: string }

/**
 * The secret in a file: its text without trailing line breaks (as `"$(cat FILE)"` gives it, so a
 * node given the file and one given the variable agree). Like a key file, it must not be readable
 * by group or others.
 */
function readSecretFile(command: string, path: string): string {
  let mode: number
  let text: string
  try {
    mode = statSync(path).mode
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw circlesError('USAGE', `${command}: cannot read --cluster-secret-file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  if ((mode & 0o077) !== 0) throw circlesError('USAGE', `${command}: --cluster-secret-file ${path} must not be readable by group or others (chmod 600 ${path})`)
  return text.replace(/[\r\n]+$/, '')
}

/**
 * The cluster secret from `--cluster-secret-file`, `$CIRCLES_CLUSTER_SECRET` or `--cluster-secret`
 * (which `ps` shows to every user of the machine).
 */
function clusterSecret(command: string, values: RedisValues, fromEnv: string | undefined): string | undefined {
  if (values['cluster-secret'] !== undefined && values['cluster-secret-file'] !== undefined) {
    throw circlesError('USAGE', `${command}: give --cluster-secret-file or --cluster-secret, not both`)
  }
  if (values['cluster-secret-file'] !== undefined) return readSecretFile(command, values['cluster-secret-file'])
  return values['cluster-secret'] ?? fromEnv
}

/**
 * Node options for Redis from the command line, or undefined when no `--redis-url` is given
 * (then nothing connects to Redis). The cluster secret is required: tasks and replies carry a
 * MAC made with it, since anyone who can write to Redis could otherwise act as any caller.
 */
export function redisOptionsFrom(command: string, values: RedisValues): NodeRedisOptions | undefined {
  // Out of this process's environment whatever the options, so that nothing it starts inherits it.
  const fromEnv = process.env[CLUSTER_SECRET_ENV]
  delete process.env[CLUSTER_SECRET_ENV]
  const urls = values['redis-url'] ?? []
  if (urls.length === 0) {
    for (const flag of ['redis-prefix', 'cluster-secret', 'cluster-secret-file', 'queue-allowance-ms'] as const) {
      if (values[flag] !== undefined) throw circlesError('USAGE', `${command}: --${flag} needs --redis-url`)
    }
    return undefined
  }
  const target = parseRedisTarget(urls)
  const prefix = values['redis-prefix'] ?? DEFAULT_PREFIX
  if (!isValidPrefix(prefix)) throw circlesError('USAGE', `${command}: --redis-prefix must be 1-64 of A-Z a-z 0-9 _ . : -`)
  const secret = clusterSecret(command, values, fromEnv)
  if (secret === undefined || Buffer.byteLength(secret) < 16) {
    throw circlesError('USAGE', `${command}: --redis-url needs a cluster secret of at least 16 bytes: --cluster-secret-file, $${CLUSTER_SECRET_ENV} or --cluster-secret (the same on every node)`)
  }
  let queueAllowanceMs: number | undefined
  if (values['queue-allowance-ms'] !== undefined) {
    queueAllowanceMs = parsePositiveInteger(values['queue-allowance-ms'])
    if (queueAllowanceMs === undefined) throw circlesError('USAGE', `${command}: --queue-allowance-ms must be a positive integer`)
  }
  return { target, secret, prefix, ...(queueAllowanceMs === undefined ? {} : { queueAllowanceMs }) }
}

import { resolve } from 'node:path'
import { circlesError } from '../errors/index.js'
import { parsePublicKey } from '../identity/index.js'
import { CircleNode } from '../node/index.js'
import { awaitRedis, NODE_OPTIONS, serveUntilSignal, servingOptionsFrom } from './node-options.js'
import { REDIS_OPTIONS, redisOptionsFrom } from './redis-options.js'
import { parseOptions, type CliIo, type CommandSpec } from './run-cli.js'

export const WORKER_COMMAND = {
  name: 'worker',
  synopsis: '--redis-url URL [--circle-public-key KEY] [--standby] [options]',
  summary: [
    'A node with no gateway: serves, through Redis, every context under the database path (a',
    'multi-peer worker; "circles context create" adds one) or the one context KEY (a single-peer',
    "worker). With --standby it waits for the database path's lock and takes over when its",
    'holder goes; meanwhile its admin /healthz answers 503 {"status":"standby"}.',
  ].join('\n'),
  options: {
    'circle-public-key': { type: 'string', arg: 'KEY', help: 'serve only this context (default: every context under the database path)' },
    standby: { type: 'boolean', help: "wait for the database path's lock, and take over when its holder goes" },
    ...NODE_OPTIONS,
    ...REDIS_OPTIONS,
  },
} as const satisfies CommandSpec

/**
 * `circles worker`: a node with no gateway that serves contexts from Redis — the one named by
 * `--circle-public-key` (a single-peer worker, the other namespaces under the path ignored) or
 * every context under `--db-path` (a multi-peer worker). `--standby` waits for the database
 * path's lock instead of refusing to start, and takes over when the process holding it goes.
 */
export async function workerCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(WORKER_COMMAND, argv)
  const redis = redisOptionsFrom('worker', values)
  if (redis === undefined) throw circlesError('USAGE', 'worker: --redis-url is required (a worker serves its contexts through Redis)')
  const serving = servingOptionsFrom('worker', values, io)
  const { log, sandbox, admin, limits, domains } = serving
  const dbPath = resolve(serving.dbPath)
  let single: string | undefined
  if (values['circle-public-key'] !== undefined) {
    try {
      single = parsePublicKey(values['circle-public-key'])
    } catch (error) {
      throw circlesError('USAGE', `worker: --circle-public-key: ${(error as Error).message}`)
    }
  }
  const node = await CircleNode.start({
    dbPath,
    circles: [],
    sandbox,
    limits,
    logger: log,
    redis,
    adoptExisting: single === undefined,
    ...(single === undefined ? {} : { contexts: [single] }),
    lock: values.standby === true ? 'wait' : 'fail',
    domains,
    ...(admin === undefined ? {} : { admin }),
  })
  await awaitRedis(node, log)
  // Signals drain from here on: the line below tells operators that SIGTERM drains.
  const served = serveUntilSignal(node, log)
  log.info(
    { db_path: dbPath, contexts: node.peers.size.registered, single: single ?? null, node_id: node.redis!.nodeId, admin: node.adminUrl ?? null, sandbox_pids: node.sandbox.pids },
    single !== undefined
      ? `worker serving context ${single}`
      : node.peers.size.registered === 0
        ? `worker serving 0 context(s) from ${dbPath}: "circles context create --db-path ${dbPath}" makes one (then start the worker again)`
        : `worker serving ${node.peers.size.registered} context(s) from ${dbPath}`,
  )
  const code = await served
  if (code !== 0) process.exit(code)
  return code
}

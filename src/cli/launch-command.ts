import { launch } from '../launcher/index.js'
import { allowedOriginsFrom, awaitRedis, NODE_OPTIONS, serveUntilSignal, servingOptionsFrom } from './node-options.js'
import { REDIS_OPTIONS, redisOptionsFrom } from './redis-options.js'
import { parseOptions, type CliIo, type CommandSpec } from './run-cli.js'

export const LAUNCH_COMMAND = {
  name: 'launch',
  synopsis: '[--config FILE] [options]',
  summary: [
    'Serve every circle of the config file in this process, until SIGTERM or SIGINT, which drain.',
    'Logs go to stdout (JSON lines when piped); /metrics and /healthz on the admin listener.',
    'Load limits apply to every remote address but loopback. With --redis-url, plays for',
    'contexts other nodes serve are queued to them through Redis.',
  ].join('\n'),
  options: {
    config: { type: 'string', arg: 'FILE', help: 'the circles to serve (default circles.json)' },
    'allowed-origin': { type: 'string', multiple: true, arg: 'ORIGIN', help: 'a browser origin every circle without its own allowed_origins admits, or * (repeatable)' },
    ...NODE_OPTIONS,
    ...REDIS_OPTIONS,
  },
} as const satisfies CommandSpec

/**
 * `circles launch`: serve every circle of the config file until SIGTERM/SIGINT, then drain
 * (stop accepting, finish or answer in-flight work, close sockets with 1001) and exit 0. Logs
 * go to stdout: readable in a terminal, JSON lines otherwise. Exits 1 if the node stops on its
 * own (its supervision tree gave up), with the reason logged.
 */
export async function launchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(LAUNCH_COMMAND, argv)
  const serving = servingOptionsFrom('launch', values, io)
  const redis = redisOptionsFrom('launch', values)
  const allowedOrigins = allowedOriginsFrom('launch', values['allowed-origin'])
  const { log, dbPath, sandbox, admin, limits, domains, trustedProxies } = serving
  const configPath = values.config ?? 'circles.json'
  const { node, circles } = await launch({
    configPath,
    dbPath,
    node: { sandbox, limits, trustedProxies, logger: log, domains, allowedOrigins, ...(admin === undefined ? {} : { admin }), ...(redis === undefined ? {} : { redis }) },
  })
  await awaitRedis(node, log)
  // Signals drain from here on: the line below tells operators that SIGTERM drains.
  const served = serveUntilSignal(node, log)
  for (const c of circles) {
    const http = c.url.replace(/^ws/, 'http')
    log.info({ circle: c.name, public_key: c.publicKey, url: c.url, playground: http, info: `${http}info`, new_key: c.keyCreated }, `circle ${c.name} served at ${http}`)
  }
  log.info(
    {
      circles: circles.length,
      config: configPath,
      db_path: dbPath,
      admin: node.adminUrl ?? null,
      sandbox_pids: node.sandbox.pids,
      ...(node.redis === undefined ? {} : { node_id: node.redis.nodeId }),
    },
    `serving ${circles.length} circle(s); Ctrl-C or SIGTERM drains and stops`,
  )
  const code = await served
  if (code !== 0) process.exit(code)
  return code
}

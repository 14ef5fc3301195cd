import { circlesError } from '../errors/index.js'
import { launch } from '../launcher/index.js'
import type { LoadLimitOptions } from '../limits/index.js'
import { createLogger, parseLogLevel } from '../log/index.js'
import type { SandboxPoolOptions } from '../sandbox/index.js'
import { parseOptions, type CliIo } from './run-cli.js'

/** Default database path: $CIRCLES_DB_PATH, else ./data. */
export function defaultDbPath(): string {
  return process.env['CIRCLES_DB_PATH'] ?? './data'
}

/** Default admin port of `circles launch` (metrics and detailed health, on 127.0.0.1). */
export const DEFAULT_ADMIN_PORT = 9464

function portOption(value: string, flag: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535 || value.trim() === '') throw circlesError('USAGE', `launch: ${flag} must be an integer from 0 to 65535`)
  return n
}

/** The load-limit flags: each a positive integer; `--no-load-limits` cannot be combined with them. */
function loadLimitOptions(values: Record<string, string | boolean | undefined>): LoadLimitOptions {
  const numeric = [
    ['connections-per-address', 'connectionsPerAddress'],
    ['nonces-per-minute', 'noncesPerMinute'],
    ['failed-auth-per-minute', 'failedAuthPerMinute'],
    ['plays-per-second', 'playsPerSecond'],
  ] as const
  const limits: Record<string, number | boolean> = {}
  for (const [flag, key] of numeric) {
    const value = values[flag]
    if (typeof value !== 'string') continue
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1 || value.trim() === '') throw circlesError('USAGE', `launch: --${flag} must be a positive integer`)
    limits[key] = n
  }
  if (values['no-load-limits'] === true) {
    if (Object.keys(limits).length > 0 || values['limits-loopback'] === true) {
      throw circlesError('USAGE', 'launch: --no-load-limits cannot be combined with other load-limit options')
    }
    return { enabled: false }
  }
  if (values['limits-loopback'] === true) limits['loopback'] = true
  return limits as LoadLimitOptions
}

/**
 * `circles launch`: serve every circle of the config file until SIGTERM/SIGINT, then drain
 * (stop accepting, finish or answer in-flight work, close sockets with 1001) and exit 0. Logs
 * go to stdout: readable in a terminal, JSON lines otherwise. Exits 1 if the node stops on its
 * own (its supervision tree gave up), with the reason logged.
 */
export async function launchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions('launch', argv, {
    config: { type: 'string' },
    'db-path': { type: 'string' },
    'redis-url': { type: 'string' },
    'sandbox-processes': { type: 'string' },
    'sandbox-isolation': { type: 'string' },
    'log-level': { type: 'string' },
    'admin-port': { type: 'string' },
    'admin-host': { type: 'string' },
    'no-admin': { type: 'boolean' },
    'limits-loopback': { type: 'boolean' },
    'no-load-limits': { type: 'boolean' },
    'connections-per-address': { type: 'string' },
    'nonces-per-minute': { type: 'string' },
    'failed-auth-per-minute': { type: 'string' },
    'plays-per-second': { type: 'string' },
  })
  if (values['redis-url'] !== undefined) {
    throw circlesError('USAGE', 'launch: --redis-url: cross-node queueing is not available in this version; launch without it')
  }
  const sandbox: SandboxPoolOptions = {}
  if (values['sandbox-processes'] !== undefined) {
    const n = Number(values['sandbox-processes'])
    if (!Number.isInteger(n) || n < 1) throw circlesError('USAGE', 'launch: --sandbox-processes must be a positive integer')
    Object.assign(sandbox, { processes: n })
  }
  const isolation = values['sandbox-isolation']
  if (isolation !== undefined) {
    if (isolation !== 'process' && isolation !== 'thread') {
      throw circlesError('USAGE', 'launch: --sandbox-isolation must be "process" or "thread"')
    }
    Object.assign(sandbox, { isolation })
  }
  const limits = loadLimitOptions(values)
  const level = parseLogLevel(values['log-level'] ?? process.env['CIRCLES_LOG_LEVEL'] ?? 'info', values['log-level'] === undefined ? 'CIRCLES_LOG_LEVEL' : 'launch: --log-level')
  if (values['no-admin'] === true && (values['admin-port'] !== undefined || values['admin-host'] !== undefined)) {
    throw circlesError('USAGE', 'launch: --no-admin cannot be combined with --admin-port or --admin-host')
  }
  const admin =
    values['no-admin'] === true
      ? undefined
      : { port: values['admin-port'] === undefined ? DEFAULT_ADMIN_PORT : portOption(values['admin-port'], '--admin-port'), host: values['admin-host'] ?? '127.0.0.1' }
  const log = createLogger({ level, destination: io.stdout })
  const configPath = values.config ?? 'circles.json'
  const dbPath = values['db-path'] ?? defaultDbPath()
  const { node, circles } = await launch({ configPath, dbPath, node: { sandbox, limits, logger: log, ...(admin === undefined ? {} : { admin }) } })
  for (const c of circles) {
    log.info({ circle: c.name, public_key: c.publicKey, url: c.url, info: `${c.url.replace(/^ws/, 'http')}info`, new_key: c.keyCreated }, `circle ${c.name} served`)
  }
  log.info(
    { circles: circles.length, config: configPath, db_path: dbPath, admin: node.adminUrl ?? null, sandbox_pids: node.sandbox.pids },
    `serving ${circles.length} circle(s); Ctrl-C or SIGTERM drains and stops`,
  )
  const code = await new Promise<number>((resolve) => {
    let stoppingSince: number | undefined
    const stop = (signal: string) => {
      if (stoppingSince !== undefined) {
        // A terminal and `npm start` may both deliver the same Ctrl-C: only a later one forces.
        if (performance.now() - stoppingSince < 1_000) return
        log.warn({ signal }, 'signal again: exiting without waiting')
        process.exit(1)
      }
      stoppingSince = performance.now()
      log.info({ signal }, 'draining')
      void node.close().then(() => resolve(0))
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    node.onFailure(() => resolve(1))
  })
  if (code !== 0) process.exit(code)
  return code
}

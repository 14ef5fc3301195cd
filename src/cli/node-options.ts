import { DEFAULTS, flagOf, parsePositiveInteger } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { ClientAddresses, type LoadLimitOptions } from '../limits/index.js'
import { parseDomains, parseOrigins } from '../server/index.js'
import { createLogger, parseLogLevel, type Logger } from '../log/index.js'
import type { CircleNode } from '../node/index.js'
import type { SandboxPoolOptions } from '../sandbox/index.js'
import type { CliIo, OptionSpec } from './run-cli.js'

/** Default admin port (metrics and detailed health, on 127.0.0.1). */
export const DEFAULT_ADMIN_PORT = 9464

const count = (n: number) => n.toLocaleString('en')

/** Options every serving command takes (launch, worker). */
export const NODE_OPTIONS = {
  'db-path': { type: 'string', arg: 'DIR', help: 'the database path (default $CIRCLES_DB_PATH, else ./data)' },
  'sandbox-processes': { type: 'string', arg: 'N', help: 'sandbox host processes (default one per core, at most 8)' },
  'sandbox-isolation': { type: 'string', arg: 'MODE', help: 'process (default), or thread: inside this process, trusted scripts only' },
  'log-level': { type: 'string', arg: 'LEVEL', help: 'fatal|error|warn|info|debug|trace|silent (default $CIRCLES_LOG_LEVEL, else info)' },
  'admin-port': { type: 'string', arg: 'N', help: `the admin listener's port (/metrics, /healthz; default ${DEFAULT_ADMIN_PORT}; 0: any free)` },
  'admin-host': { type: 'string', arg: 'HOST', help: "the admin listener's address (default 127.0.0.1)" },
  'no-admin': { type: 'boolean', help: 'no admin listener' },
  'connections-per-address': { type: 'string', arg: 'N', help: `open connections per remote address (default ${count(DEFAULTS.CONNECTIONS_PER_ADDRESS)})` },
  'nonces-per-minute': { type: 'string', arg: 'N', help: `fetch_nonce per remote address a minute (default ${count(DEFAULTS.NONCES_PER_MINUTE_PER_ADDRESS)})` },
  'failed-auth-per-minute': { type: 'string', arg: 'N', help: `failed authenticate per remote address a minute (default ${count(DEFAULTS.FAILED_AUTH_PER_MINUTE_PER_ADDRESS)})` },
  'plays-per-second': { type: 'string', arg: 'N', help: `plays per caller a second, also the burst (default ${count(DEFAULTS.PLAYS_PER_SECOND_PER_CALLER)})` },
  'limits-loopback': { type: 'boolean', help: 'apply the load limits to loopback addresses too' },
  'no-load-limits': { type: 'boolean', help: 'no load limits (the crash quarantine stays)' },
  'frames-per-second': { type: 'string', arg: 'N', help: `frames per remote address a second, refused ones included (default ${count(DEFAULTS.FRAMES_PER_SECOND_PER_ADDRESS)})` },
  'frame-bytes-per-second': { type: 'string', arg: 'N', help: `frame bytes per remote address a second (default ${count(DEFAULTS.FRAME_BYTES_PER_SECOND_PER_ADDRESS)})` },
  'invalid-frames-per-minute': { type: 'string', arg: 'N', help: `invalid frames a socket may send a minute before it is closed (default ${count(DEFAULTS.INVALID_FRAMES_PER_MINUTE_PER_SOCKET)})` },
  'trusted-proxy': { type: 'string', multiple: true, arg: 'ADDR[/BITS]', help: 'a reverse proxy whose X-Forwarded-For names the client (repeatable)' },
  domain: { type: 'string', multiple: true, arg: 'NAME', help: 'a host name (or wss://name) every circle without its own domains answers to, and the admin listener (repeatable)' },
} as const satisfies OptionSpec

/** Default database path: $CIRCLES_DB_PATH, else ./data. */
export function defaultDbPath(): string {
  return process.env['CIRCLES_DB_PATH'] ?? './data'
}

function portOption(command: string, value: string, flag: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535 || value.trim() === '') throw circlesError('USAGE', `${command}: ${flag} must be an integer from 0 to 65535`)
  return n
}

export interface ServingOptions {
  readonly dbPath: string
  readonly sandbox: SandboxPoolOptions
  readonly limits: LoadLimitOptions
  /** Reverse proxies whose X-Forwarded-For header is read (`--trusted-proxy`). */
  readonly trustedProxies: readonly string[]
  readonly admin: { readonly port: number; readonly host: string } | undefined
  /** `--domain`: the names every circle without its own `domains` answers to, and the admin listener. */
  readonly domains: readonly string[]
  readonly log: Logger
}

/** `--<flag>` values checked by one of the server's list parsers; a USAGE error names the value. */
function flagList(command: string, flag: string, values: string[] | undefined, parse: typeof parseDomains | typeof parseOrigins): string[] {
  const list = values ?? []
  parse(list, `--${flag}`, (field, rule) => {
    const i = Number(/\[(\d+)\]$/.exec(field)?.[1])
    throw circlesError('USAGE', `${command}: --${flag} ${JSON.stringify(list[i])} ${rule}`)
  })
  return list
}

/** `--allowed-origin` (launch): browser origins every circle without its own `allowed_origins` admits. */
export function allowedOriginsFrom(command: string, values: string[] | undefined): string[] {
  return flagList(command, 'allowed-origin', values, parseOrigins)
}

/** `--trusted-proxy ADDRESS[/BITS]`, repeatable. */
function trustedProxiesFrom(command: string, values: Record<string, string | boolean | string[] | undefined>): readonly string[] {
  const list = values['trusted-proxy']
  if (!Array.isArray(list)) return []
  for (const entry of list) {
    try {
      new ClientAddresses([entry])
    } catch {
      throw circlesError('USAGE', `${command}: --trusted-proxy "${entry.slice(0, 64)}" is not an IP address or a CIDR range`)
    }
  }
  return list
}

/** The load-limit flags: each a positive integer; `--no-load-limits` cannot be combined with them. */
function loadLimitOptions(command: string, values: Record<string, string | boolean | string[] | undefined>): LoadLimitOptions {
  const numeric = ['connectionsPerAddress', 'noncesPerMinute', 'failedAuthPerMinute', 'playsPerSecond', 'framesPerSecond', 'frameBytesPerSecond', 'invalidFramesPerMinute'] as const
  const limits: Record<string, number | boolean> = {}
  for (const key of numeric) {
    const flag = flagOf(key)
    const value = values[flag]
    if (typeof value !== 'string') continue
    const n = parsePositiveInteger(value)
    if (n === undefined) throw circlesError('USAGE', `${command}: --${flag} must be a positive integer`)
    limits[key] = n
  }
  if (values['no-load-limits'] === true) {
    if (Object.keys(limits).length > 0 || values['limits-loopback'] === true) {
      throw circlesError('USAGE', `${command}: --no-load-limits cannot be combined with other load-limit options`)
    }
    return { enabled: false }
  }
  if (values['limits-loopback'] === true) limits['loopback'] = true
  return limits as LoadLimitOptions
}

/** Read the common serving options; every problem is a USAGE error naming the flag. */
export function servingOptionsFrom(
  command: string,
  values: { 'db-path'?: string; 'sandbox-processes'?: string; 'sandbox-isolation'?: string; 'log-level'?: string; 'admin-port'?: string; 'admin-host'?: string; 'no-admin'?: boolean; domain?: string[] } & Record<
    string,
    string | boolean | string[] | undefined
  >,
  io: CliIo,
): ServingOptions {
  const limits = loadLimitOptions(command, values)
  const trustedProxies = trustedProxiesFrom(command, values)
  const sandbox: { processes?: number; isolation?: 'process' | 'thread' } = {}
  if (values['sandbox-processes'] !== undefined) {
    const n = parsePositiveInteger(values['sandbox-processes'])
    if (n === undefined) throw circlesError('USAGE', `${command}: --sandbox-processes must be a positive integer`)
    sandbox.processes = n
  }
  const isolation = values['sandbox-isolation']
  if (isolation !== undefined) {
    if (isolation !== 'process' && isolation !== 'thread') throw circlesError('USAGE', `${command}: --sandbox-isolation must be "process" or "thread"`)
    sandbox.isolation = isolation
  }
  const level = parseLogLevel(values['log-level'] ?? process.env['CIRCLES_LOG_LEVEL'] ?? 'info', values['log-level'] === undefined ? 'CIRCLES_LOG_LEVEL' : `${command}: --log-level`)
  if (values['no-admin'] === true && (values['admin-port'] !== undefined || values['admin-host'] !== undefined)) {
    throw circlesError('USAGE', `${command}: --no-admin cannot be combined with --admin-port or --admin-host`)
  }
  const admin =
    values['no-admin'] === true
      ? undefined
      : {
          port: values['admin-port'] === undefined ? DEFAULT_ADMIN_PORT : portOption(command, values['admin-port'], '--admin-port'),
          host: values['admin-host'] ?? '127.0.0.1',
        }
  const domains = flagList(command, 'domain', values.domain, parseDomains)
  return { dbPath: values['db-path'] ?? defaultDbPath(), sandbox, limits, trustedProxies, admin, domains, log: createLogger({ level, destination: io.stdout }) }
}

/** How long start-up waits for Redis before logging that cross-node work waits for it. */
const REDIS_START_WAIT_MS = 5_000

/**
 * Wait until a clustered node has connected to Redis and claimed the contexts it hosts, so that
 * the "serving" line means other nodes can reach them; if Redis does not answer soon, say so and
 * go on (local circles are served all the same; the bridge catches up when Redis is back). A
 * node that may not serve through this Redis (CLUSTER_SECRET_MISMATCH) is closed, and the error
 * thrown: the command exits non-zero and says why.
 */
export async function awaitRedis(node: CircleNode, log: Logger): Promise<void> {
  const bridge = node.redis
  if (bridge === undefined) return
  let timer: NodeJS.Timeout | undefined
  let ready: boolean
  try {
    ready = await Promise.race([
      bridge.whenServing().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), REDIS_START_WAIT_MS)
      }),
    ])
  } catch (error) {
    await node.close()
    throw error
  } finally {
    clearTimeout(timer)
  }
  if (!ready) log.warn({ waited_ms: REDIS_START_WAIT_MS }, 'Redis does not answer yet: cross-node work waits for it; local circles are served')
}

/**
 * Serve until SIGTERM/SIGINT (then drain and resolve 0), or until the node stops on its own
 * (its supervision tree gave up: the reason is logged; resolve 1).
 */
export function serveUntilSignal(node: CircleNode, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
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
}

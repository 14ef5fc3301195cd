import { circlesError } from '../errors/index.js'
import { launch } from '../launcher/index.js'
import type { SandboxPoolOptions } from '../sandbox/index.js'
import { parseOptions, type CliIo } from './run-cli.js'

/** Default database path: $CIRCLES_DB_PATH, else ./data. */
export function defaultDbPath(): string {
  return process.env['CIRCLES_DB_PATH'] ?? './data'
}

/**
 * `circles launch`: serve every circle of the config file until SIGTERM/SIGINT, then drain
 * (stop accepting, finish or answer in-flight work, close sockets with 1001) and exit 0.
 */
export async function launchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions('launch', argv, {
    config: { type: 'string' },
    'db-path': { type: 'string' },
    'redis-url': { type: 'string' },
    'sandbox-processes': { type: 'string' },
    'sandbox-isolation': { type: 'string' },
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
  const configPath = values.config ?? 'circles.json'
  const dbPath = values['db-path'] ?? defaultDbPath()
  const { node, circles } = await launch({ configPath, dbPath, node: { sandbox, log: (line) => io.stderr.write(`${line}\n`) } })
  for (const c of circles) {
    const http = c.url.replace(/^ws/, 'http')
    io.stdout.write(
      `circle ${c.name}\n  public key  ${c.publicKey}${c.keyCreated ? '  (new key)' : ''}\n  ws url      ${c.url}\n` +
        `  playground  ${http}\n  info        ${http}info\n`,
    )
  }
  io.stdout.write(`circles: serving ${circles.length} circle(s) from ${configPath}, data in ${dbPath}; Ctrl-C or SIGTERM drains and stops\n`)
  await new Promise<void>((resolve) => {
    let stoppingSince: number | undefined
    const stop = (signal: string) => {
      if (stoppingSince !== undefined) {
        // A terminal and `npm start` may both deliver the same Ctrl-C: only a later one forces.
        if (performance.now() - stoppingSince < 1_000) return
        io.stderr.write(`circles: ${signal} again: exiting without waiting\n`)
        process.exit(1)
      }
      stoppingSince = performance.now()
      io.stderr.write(`circles: ${signal}: draining…\n`)
      void node.close().then(resolve)
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
  io.stderr.write('circles: stopped\n')
  return 0
}

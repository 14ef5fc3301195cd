import pino from 'pino'

type Logger = pino.Logger
type LevelWithSilent = pino.LevelWithSilent
import pretty from 'pino-pretty'
import { circlesError } from '../errors/index.js'

export type { Logger }

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * Fields that could carry a secret, a nonce, a signature, a script or a document: never written,
 * even if a caller passed one by mistake. The code does not log them in the first place; this
 * is the second line (a test greps a whole session's log for a known secret and document).
 */
export const REDACTED_PATHS = [
  'secret',
  'secretKey',
  'secret_key',
  'nonce',
  'signature',
  'script',
  'source',
  'document',
  'value',
  'output',
  'result',
  '*.secret',
  '*.secretKey',
  '*.secret_key',
  '*.nonce',
  '*.signature',
  '*.script',
  '*.document',
  '*.value',
  '*.output',
  '*.result',
]

export interface LoggerOptions {
  /** Default: `$CIRCLES_LOG_LEVEL`, else `info`. */
  readonly level?: string
  /**
   * `json`: one JSON object per line; `pretty`: readable lines for a terminal; `auto` (default):
   * pretty when stdout is a terminal, JSON otherwise.
   */
  readonly format?: 'json' | 'pretty' | 'auto'
  /** Where lines go (default: stdout). */
  readonly destination?: NodeJS.WritableStream
}

/** Check a log level given on the command line or in the environment. */
export function parseLogLevel(value: string, field: string): LevelWithSilent {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw circlesError('USAGE', `${field} must be one of ${LOG_LEVELS.join(', ')} (got "${value.slice(0, 32)}")`)
  }
  return value as LevelWithSilent
}

/**
 * The node's root logger (pino): JSON lines on stdout, or readable lines in a terminal. Parts of
 * the node log through child loggers carrying their bindings (`{ circle }`, `{ host }`, …).
 *
 * @example
 * const log = createLogger({ level: 'debug' })
 * log.child({ circle: 'alice' }).info({ url }, 'serving')
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = parseLogLevel(options.level ?? process.env['CIRCLES_LOG_LEVEL'] ?? 'info', 'log level')
  const destination = options.destination ?? process.stdout
  const format = options.format ?? 'auto'
  const usePretty = format === 'pretty' || (format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true)
  const base = { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }
  // Logging is best effort: a destination that fails (stdout piped into a process that went away:
  // EPIPE) must not become an uncaught error — which would be logged, fail again, and spin.
  ignoreWriteErrors(destination)
  if (usePretty) {
    const stream = pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination: destination as NodeJS.WritableStream & { fd?: number }, sync: true })
    ignoreWriteErrors(stream)
    return pino(base, stream)
  }
  if (destination === process.stdout) {
    // Synchronous writes: logs are written on events, not per request, and a line about why the
    // node is stopping must not be lost to a process.exit that follows it.
    const stream = pino.destination({ fd: 1, sync: true })
    ignoreWriteErrors(stream)
    return pino(base, stream)
  }
  return pino(base, destination as NodeJS.WritableStream)
}

const guarded = new WeakSet<object>()

function ignoreWriteErrors(stream: { on(event: 'error', listener: () => void): unknown }): void {
  if (guarded.has(stream)) return
  guarded.add(stream)
  stream.on('error', () => {})
}

/** A logger that writes nothing (tests, embedded use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

import type { Logger } from '../log/index.js'

const loggers = new Set<Logger>()
/** At most this many errors are logged a second; more are counted (an error that repeats must not spin the node on its own log). */
const MAX_LOGGED_PER_SECOND = 20
let windowStart = 0
let logged = 0
let suppressed = 0
let logging = false
/** The clock the rate of logged errors is read from (a test steps its own: see installLastResort). */
let now: () => number = () => performance.now()

function report(error: unknown, what: string): void {
  // An error raised while logging one (a log destination that fails) is not logged again.
  if (logging) return
  const t = now()
  if (t - windowStart > 1_000) {
    windowStart = t
    logged = 0
    if (suppressed > 0) {
      const count = suppressed
      suppressed = 0
      logging = true
      try {
        for (const log of loggers) log.error({ suppressed: count }, 'more uncaught errors were not logged (over 20 a second)')
      } catch {
        // The log itself fails: nothing more can be done about it here.
      } finally {
        logging = false
      }
    }
  }
  if (logged++ >= MAX_LOGGED_PER_SECOND) {
    suppressed++
    return
  }
  logging = true
  try {
    for (const log of loggers) log.error({ err: error }, `${what} caught by the last-resort handler; the node keeps serving`)
  } catch {
    // As above.
  } finally {
    logging = false
  }
}

function onUncaught(error: unknown): void {
  report(error, 'uncaught exception')
}

function onUnhandled(reason: unknown): void {
  report(reason, 'unhandled rejection')
}

/**
 * Install the process-wide last-resort handlers: an error nothing caught is logged (by every
 * node of the process) and the process keeps serving, instead of dying with every circle it
 * hosts. Every serving path has its own handler; this is the net under them. Returns the
 * function that uninstalls it (once the last node of the process has stopped). `clock` replaces
 * the process clock the rate limit of the log reads (tests step it).
 */
export function installLastResort(log: Logger, clock?: () => number): () => void {
  if (clock !== undefined) now = clock
  if (loggers.size === 0) {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUnhandled)
  }
  loggers.add(log)
  return () => {
    loggers.delete(log)
    if (loggers.size === 0) {
      process.off('uncaughtException', onUncaught)
      process.off('unhandledRejection', onUnhandled)
    }
  }
}

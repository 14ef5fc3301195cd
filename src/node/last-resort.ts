import type { Logger } from '../log/index.js'

const loggers = new Set<Logger>()

function onUncaught(error: unknown): void {
  for (const log of loggers) log.error({ err: error }, 'uncaught exception caught by the last-resort handler; the node keeps serving')
}

function onUnhandled(reason: unknown): void {
  for (const log of loggers) log.error({ err: reason }, 'unhandled rejection caught by the last-resort handler; the node keeps serving')
}

/**
 * Install the process-wide last-resort handlers: an error nothing caught is logged (by every
 * node of the process) and the process keeps serving, instead of dying with every circle it
 * hosts. Every serving path has its own handler; this is the net under them. Returns the
 * function that uninstalls it (once the last node of the process has stopped).
 */
export function installLastResort(log: Logger): () => void {
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

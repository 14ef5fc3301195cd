import { setTimeout as sleep } from 'node:timers/promises'
import { circlesError, type CirclesError } from '../errors/index.js'
import type { ProcessIdentity } from './process-identity.js'

/** Who holds a database lock, as far as its file says. */
export interface DatabaseLockHolder {
  /** The holder's pid, when the lock file names one. */
  readonly pid?: number
}

export interface DatabaseLockOptions {
  /**
   * false: fail at once with DB_LOCKED when another process holds the path. true: wait until it
   * goes away (a standby node), then take the lock.
   */
  readonly wait: boolean
  /** Called once, when the path is found held and `wait` is true, before waiting. */
  readonly onWaiting?: (holder: DatabaseLockHolder) => void
  /** Stop waiting: the acquisition then fails with DB_LOCKED. */
  readonly signal?: AbortSignal
  /** The flock(1) program (default `flock`, from PATH); `null` forces the pid-file fallback. */
  readonly flockCommand?: string | null
  /** How often a waiter rechecks a holder no kernel lock announces (pid-file holders); default 250 ms. */
  readonly pollIntervalMs?: number
}

export const DEFAULT_LOCK_POLL_INTERVAL_MS = 250

/** DB_LOCKED naming the path and, when known, the holder's pid. */
export function databaseLockedError(dbPath: string, holder: ProcessIdentity | undefined): CirclesError {
  const who = holder === undefined ? 'another process' : `process ${holder.pid}`
  return circlesError('DB_LOCKED', `Database path ${dbPath} is in use by ${who}; one process serves a database path at a time`, {
    path: dbPath,
    ...(holder === undefined ? {} : { pid: holder.pid }),
  })
}

/** DB_LOCKED for an acquisition given up through its abort signal. */
export function stoppedWaitingError(dbPath: string): CirclesError {
  return circlesError('DB_LOCKED', `Stopped waiting for the lock on database path ${dbPath}`, { path: dbPath })
}

/** Wait one poll interval, or fail with DB_LOCKED if the signal stops the wait. */
export async function pauseBeforeRetry(dbPath: string, options: DatabaseLockOptions): Promise<void> {
  try {
    await sleep(options.pollIntervalMs ?? DEFAULT_LOCK_POLL_INTERVAL_MS, undefined, options.signal ? { signal: options.signal } : {})
  } catch {
    throw stoppedWaitingError(dbPath)
  }
}

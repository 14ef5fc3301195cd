import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { circlesError, isCirclesError } from '../errors/index.js'
import type { DatabaseLockOptions } from './database-lock-options.js'
import { acquireWithFlock } from './flock-lock.js'
import type { DatabaseLock } from './held-database-lock.js'
import { acquireWithPidFile } from './pid-file-lock.js'

/** The lock file of a database path. Never deleted while in use (see below). */
export const DATABASE_LOCK_FILE = '.lock'

/**
 * Take the exclusive lock of a database path: one process serves a path at a time (two nodes
 * writing one namespace would each keep a wrong size for its quota, and their writes could
 * interleave with the other's crash recovery).
 *
 * **With flock(1)** (util-linux; the normal case on Linux): an exclusive `flock` on
 * `<dbPath>/.lock`, held by a descriptor of this process, so the kernel releases it the moment
 * this process dies — `kill -9` included; no stale lock is ever left. The file records the
 * holder's pid for the error message; it is truncated on release and never deleted (deleting a
 * locked file would let a second process lock a new file of the same name). A waiter is woken by
 * the kernel when the holder goes.
 *
 * **Without flock(1)** (or with `flockCommand: null`): `<dbPath>/.lock` is created exclusively
 * with the holder's pid and start time, and taken over when that process is no longer running.
 * A waiter polls every `pollIntervalMs`. Weaker: see pid-file-lock.ts. Nodes of one machine
 * should all use the same mechanism; a flock holder still sees a live pid-file holder and waits.
 *
 * Fails with DB_LOCKED (naming the path and the holder's pid) when the path is held and `wait`
 * is false, or when the wait is aborted through `signal`; STORAGE_ERROR when the path cannot be
 * created or locked at all.
 *
 * @example
 * const lock = await acquireDatabaseLock('./data', { wait: false })   // or throws DB_LOCKED
 * lock.onLost((reason) => { log(reason); void node.close() })
 * // …serve…
 * await lock.release()
 *
 * @example
 * // A standby: blocks until the active node dies, then takes over.
 * const lock = await acquireDatabaseLock('./data', { wait: true, onWaiting: ({ pid }) => log(`waiting for ${pid}`) })
 */
export async function acquireDatabaseLock(dbPath: string, options: DatabaseLockOptions): Promise<DatabaseLock> {
  const lockPath = join(dbPath, DATABASE_LOCK_FILE)
  try {
    mkdirSync(dbPath, { recursive: true, mode: 0o700 })
    if (options.flockCommand !== null) {
      const lock = await acquireWithFlock(dbPath, lockPath, options, options.flockCommand ?? 'flock')
      if (lock !== undefined) return lock
    }
    return await acquireWithPidFile(dbPath, lockPath, options)
  } catch (error) {
    if (isCirclesError(error)) throw error
    throw circlesError('STORAGE_ERROR', `Cannot lock database path ${dbPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

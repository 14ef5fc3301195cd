import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { circlesError } from '../errors/index.js'
import { databaseLockedError, pauseBeforeRetry, type DatabaseLockOptions } from './database-lock-options.js'
import { HeldDatabaseLock, type DatabaseLock } from './held-database-lock.js'
import { formatIdentity, isProcessAlive, ownIdentity, parseIdentity } from './process-identity.js'

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/**
 * Create `path` holding `text`, unless it exists. The text is written to a private file first
 * and hard-linked into place: link(2) fails if the name exists, and the file appears complete —
 * no reader ever sees it empty.
 */
function createWith(path: string, text: string): boolean {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`
  writeFileSync(temp, text, { mode: 0o600, flag: 'wx' })
  try {
    linkSync(temp, path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    unlinkSync(temp)
  }
}

/**
 * Take the database lock without flock(1): `<dbPath>/.lock` created exclusively with our pid
 * and start time. A file naming a process that is no longer running (or whose pid now belongs to
 * a process started later) is stale and taken over. Weaker than a kernel lock, and said so in
 * docs/scripts.md: a waiter polls instead of being woken, and two processes taking over the same
 * stale file in the same instant could both succeed (the content is re-read just before the removal,
 * which narrows that window to the two calls, not to zero).
 */
export async function acquireWithPidFile(dbPath: string, lockPath: string, options: DatabaseLockOptions): Promise<DatabaseLock> {
  const record = formatIdentity(ownIdentity())
  let announced = false
  for (;;) {
    if (createWith(lockPath, record)) {
      return new HeldDatabaseLock({
        path: lockPath,
        mechanism: 'pidfile',
        check: () => {
          const text = readText(lockPath)
          if (text === undefined) return 'the lock file was removed'
          return text === record ? undefined : 'the lock file was replaced'
        },
        release: () => {
          if (readText(lockPath) === record) unlinkSync(lockPath)
        },
      })
    }
    const text = readText(lockPath)
    if (text === undefined) continue // released between our two calls: try again at once
    const holder = parseIdentity(text)
    if (holder === undefined || !isProcessAlive(holder)) {
      // Stale (its holder died, or a flock holder released it, leaving it empty). Remove it only
      // if it is still the file we judged.
      if (readText(lockPath) === text) {
        try {
          unlinkSync(lockPath)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
            throw circlesError('STORAGE_ERROR', `Cannot remove the stale lock file ${lockPath} (${(error as NodeJS.ErrnoException).code})`)
          }
        }
      }
      continue
    }
    if (!options.wait) throw databaseLockedError(dbPath, holder)
    if (!announced) {
      announced = true
      options.onWaiting?.({ pid: holder.pid })
    }
    await pauseBeforeRetry(dbPath, options)
  }
}

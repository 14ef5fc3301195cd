import { spawn } from 'node:child_process'
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readSync, writeSync } from 'node:fs'
import { circlesError } from '../errors/index.js'
import {
  databaseLockedError,
  pauseBeforeRetry,
  stoppedWaitingError,
  type DatabaseLockOptions,
} from './database-lock-options.js'
import { HeldDatabaseLock, type DatabaseLock } from './held-database-lock.js'
import { formatIdentity, isProcessAlive, ownIdentity, parseIdentity, type ProcessIdentity } from './process-identity.js'

/** Exit code we ask flock(1) to use when the lock is taken (its default, 1, also means other failures). */
const CONFLICT_EXIT_CODE = 75
const LOCK_FILE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW
/** The lock file holds one short line; read at most this much of it. */
const MAX_RECORD_BYTES = 64

type FlockRun = { readonly code: number | null; readonly stderr: string } | 'missing'

/**
 * Run flock(1) on our descriptor of the lock file, passed to it as its fd 3. flock(2) locks
 * belong to the open file description, which the child shares with us: when flock exits after
 * taking the lock, the lock stays held by our descriptor — until we close it or this process
 * dies, however it dies (the kernel closes a killed process's descriptors). Node opens files
 * close-on-exec, so no other child (e.g. a sandbox host) inherits it and outlives us holding it.
 */
function runFlock(command: string, args: readonly string[], fd: number, signal?: AbortSignal): Promise<FlockRun> {
  return new Promise((resolve) => {
    // An abort before the wait began (e.g. from onWaiting) would never fire the listener below.
    if (signal?.aborted) {
      resolve({ code: null, stderr: 'aborted' })
      return
    }
    let child
    try {
      child = spawn(command, [...args, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] })
    } catch (error) {
      resolve({ code: null, stderr: (error as Error).message })
      return
    }
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-1000)))
    // A blocked `flock` must not outlive a wait that was given up, or this process.
    const stop = () => child.kill('SIGKILL')
    signal?.addEventListener('abort', stop, { once: true })
    process.once('exit', stop)
    const done = (run: FlockRun) => {
      signal?.removeEventListener('abort', stop)
      process.removeListener('exit', stop)
      resolve(run)
    }
    child.on('error', (error: NodeJS.ErrnoException) => done(error.code === 'ENOENT' ? 'missing' : { code: null, stderr: error.message }))
    child.on('close', (code) => done({ code, stderr }))
  })
}

function flockFailed(run: FlockRun, lockPath: string): Error {
  const why = run === 'missing' ? 'flock is no longer installed' : `flock exited with ${run.code ?? 'a signal'}${run.stderr ? `: ${run.stderr.trim()}` : ''}`
  return circlesError('STORAGE_ERROR', `Cannot lock ${lockPath}: ${why}`)
}

function readRecord(fd: number): ProcessIdentity | undefined {
  const buffer = Buffer.alloc(MAX_RECORD_BYTES)
  const n = readSync(fd, buffer, 0, buffer.length, 0)
  return parseIdentity(buffer.subarray(0, n).toString('utf8'))
}

/** Whether the descriptor still is the file at `path` (not removed or replaced since it was opened). */
function isFileAt(fd: number, path: string): boolean {
  try {
    const atPath = lstatSync(path)
    const held = fstatSync(fd)
    return atPath.ino === held.ino && atPath.dev === held.dev
  } catch {
    return false
  }
}

/**
 * Take the database lock with flock(1): an exclusive kernel lock on `<dbPath>/.lock`, recording
 * our pid in the file. Resolves undefined when flock is not installed (the caller falls back).
 */
export async function acquireWithFlock(
  dbPath: string,
  lockPath: string,
  options: DatabaseLockOptions,
  command: string,
): Promise<DatabaseLock | undefined> {
  let announced = false
  const announce = (holder: ProcessIdentity | undefined) => {
    if (!options.wait) throw databaseLockedError(dbPath, holder)
    if (announced) return
    announced = true
    options.onWaiting?.(holder === undefined ? {} : { pid: holder.pid })
  }
  let pollFirst = false
  for (;;) {
    if (pollFirst) await pauseBeforeRetry(dbPath, options)
    pollFirst = false
    const fd = openSync(lockPath, LOCK_FILE_FLAGS, 0o600)
    let held = false
    try {
      let run = await runFlock(command, ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT_CODE)], fd)
      if (run === 'missing') return undefined
      if (run.code === CONFLICT_EXIT_CODE) {
        announce(readRecord(fd))
        run = await runFlock(command, ['--exclusive'], fd, options.signal)
        if (options.signal?.aborted) throw stoppedWaitingError(dbPath)
      }
      if (run === 'missing' || run.code !== 0) throw flockFailed(run, lockPath)
      // While we waited, the file may have been removed or replaced: our lock would then be on a
      // file nobody else opens. Start again on the file now at the path.
      if (!isFileAt(fd, lockPath)) continue
      // A live process recorded in a file whose kernel lock was free did not use flock: it holds
      // the path through the pid-file fallback. There is no kernel event to wait on: poll.
      const recorded = readRecord(fd)
      if (recorded !== undefined && recorded.pid !== process.pid && isProcessAlive(recorded)) {
        announce(recorded)
        pollFirst = true
        continue
      }
      ftruncateSync(fd, 0)
      writeSync(fd, formatIdentity(ownIdentity()), 0)
      held = true
      return new HeldDatabaseLock({
        path: lockPath,
        mechanism: 'flock',
        fd,
        check: () => (isFileAt(fd, lockPath) ? undefined : 'the lock file was removed or replaced'),
        release: () => {
          // Clear the pid first: once the descriptor is closed, the next holder writes its own.
          try {
            ftruncateSync(fd, 0)
          } finally {
            closeSync(fd)
          }
        },
      })
    } finally {
      if (!held) closeSync(fd)
    }
  }
}

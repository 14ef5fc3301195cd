import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'

/** How a database lock is held (see database-lock.ts). */
export type LockMechanism = 'flock' | 'pidfile'

/** An exclusive lock on a database path, held by this process. */
export interface DatabaseLock {
  /** The lock file, `<dbPath>/.lock`. */
  readonly path: string
  readonly mechanism: LockMechanism
  /**
   * The descriptor that holds a `flock` lock (undefined for the pid-file fallback). Handing it to
   * a child process (as an extra stdio descriptor) keeps the kernel lock held until that child
   * has exited too: a sandbox host orphaned by a node killed with -9 can finish a write, but no
   * new holder can start before it is gone.
   */
  readonly fd: number | undefined
  /** Let the path go (idempotent). The lock also goes when this process dies, however it dies. */
  release(): Promise<void>
  /**
   * Call `listener` (once) if the lock is lost while held: its file was removed or replaced, so
   * another process could now lock the new file. The holder should stop serving. Called at once
   * if the lock is already lost; never after {@link release}.
   */
  onLost(listener: (reason: string) => void): void
}

export interface HeldLockSpec {
  readonly path: string
  readonly mechanism: LockMechanism
  readonly fd?: number
  /** Why the lock is no longer held, or undefined while it is. Run when the lock file changes. */
  readonly check: () => string | undefined
  /** Give the lock up (synchronous: also run when the process exits). */
  readonly release: () => void
}

/**
 * A held lock: watches its file's directory, so that a removal or replacement of the lock file
 * is noticed when it happens rather than at the next poll, and reports it to `onLost`.
 */
export class HeldDatabaseLock implements DatabaseLock {
  readonly path: string
  readonly mechanism: LockMechanism
  readonly fd: number | undefined
  private readonly spec: HeldLockSpec
  private readonly listeners: ((reason: string) => void)[] = []
  private readonly watcher: FSWatcher | undefined
  private lost: string | undefined
  private released = false

  constructor(spec: HeldLockSpec) {
    this.spec = spec
    this.path = spec.path
    this.mechanism = spec.mechanism
    this.fd = spec.fd
    const file = basename(spec.path)
    try {
      // Not persistent: a held lock must not keep the process alive by itself.
      this.watcher = watch(dirname(spec.path), { persistent: false }, (_event, name) => {
        if (name === null || name === file) this.verify()
      })
      // The directory itself going away ends the watch with an error: the lock file went with it.
      this.watcher.on('error', () => this.verify())
    } catch {
      // No watch (e.g. out of inotify instances): the lock holds all the same, only a removed
      // lock file goes unnoticed.
      this.watcher = undefined
    }
  }

  onLost(listener: (reason: string) => void): void {
    if (this.released) return
    if (this.lost !== undefined) {
      const reason = this.lost
      queueMicrotask(() => listener(reason))
    } else this.listeners.push(listener)
  }

  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    this.watcher?.close()
    this.listeners.length = 0
    this.spec.release()
  }

  private verify(): void {
    if (this.released || this.lost !== undefined) return
    const reason = this.spec.check()
    if (reason === undefined) return
    this.lost = reason
    for (const listener of this.listeners.splice(0)) listener(reason)
  }
}

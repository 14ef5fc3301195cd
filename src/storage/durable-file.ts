import { randomBytes } from 'node:crypto'
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fsyncDirectory } from './fsync-directory.js'

// A new file only (O_EXCL), never through a symlink planted at its name.
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/** The replace succeeded, but the directory sync after it did not: the new file may not survive a power loss. */
export class DirectorySyncError extends Error {
  constructor(override readonly cause: unknown) {
    super(`the file was replaced, but its directory could not be synced: ${(cause as Error)?.message ?? String(cause)}`)
    this.name = 'DirectorySyncError'
  }
}

export interface ReplaceFileOptions {
  /** Mode of the new file (default 0600). */
  readonly mode?: number
  /** The temporary file's name, in the same directory (default `.tmp-<name>.<random>`). */
  readonly tempName?: string
  /** Called with the temporary file written and synced, just before the rename (tests' seam). */
  readonly beforeRename?: () => void
  /** Called once the rename is done, before the directory sync (the caller's figures follow the disk from there). */
  readonly renamed?: () => void
}

/**
 * Replace the file at `path` with `data`, durably: write a temporary file beside it, fsync it,
 * rename it over `path`, then fsync the directory (a rename survives a power loss only once its
 * directory is synced). A crash at any point leaves the old file or the new one, never a torn
 * one. A failure before the rename removes the temporary file and throws what failed; a failure
 * of the directory sync throws DirectorySyncError (the new file is then in place).
 *
 * @example
 * replaceFileSync(join(root, 'config', 'policy.json'), `${JSON.stringify(policy)}\n`)
 */
export function replaceFileSync(path: string, data: string | Uint8Array, options: ReplaceFileOptions = {}): void {
  const dir = dirname(path)
  const temp = join(dir, options.tempName ?? `.tmp-${path.slice(dir.length + 1)}.${randomBytes(6).toString('hex')}`)
  let fd: number | undefined
  try {
    fd = openSync(temp, TEMP_FLAGS, options.mode ?? 0o600)
    const buffer = typeof data === 'string' ? Buffer.from(data) : data
    let offset = 0
    while (offset < buffer.length) offset += writeSync(fd, buffer, offset)
    // The data must be on disk before the rename publishes it, or a crash could leave the new
    // name pointing at an empty or partial file.
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    options.beforeRename?.()
    renameSync(temp, path)
  } catch (error) {
    if (fd !== undefined) closeSync(fd)
    try {
      unlinkSync(temp)
    } catch {
      // The temporary file may not exist.
    }
    throw error
  }
  options.renamed?.()
  try {
    fsyncDirectory(dir)
  } catch (error) {
    throw new DirectorySyncError(error)
  }
}

import { closeSync, constants, fsyncSync, openSync } from 'node:fs'

// O_DIRECTORY: fail (ENOTDIR) rather than sync whatever file a path was swapped for.
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY

/**
 * Flush a directory's entries to disk. A rename, a new file or an unlink changes the directory,
 * not the file: until the directory itself is fsynced, a power loss may bring back the old entry
 * (or lose the new one) even though the file's data was synced. POSIX file systems (ext4, xfs,
 * btrfs) all need this; Linux allows fsync on a descriptor opened read-only.
 *
 * @example
 * renameSync(temp, path)
 * fsyncDirectory(dirname(path)) // now the rename survives a crash
 */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, DIRECTORY_FLAGS)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { circlesError, isCirclesError } from '../errors/index.js'
import { decodeDocumentName, encodeDocumentName, validateDocumentName } from './document-name.js'
import { NAMESPACE_DIRS } from './layout.js'

export interface StorageQuota {
  /** Largest single document, in bytes of serialised JSON. */
  readonly maxDocumentBytes: number
  /** Largest total of the namespace's documents. */
  readonly maxNamespaceBytes: number
  /** Longest document name, in UTF-8 bytes. */
  readonly maxNameBytes: number
}

const TEMP_PREFIX = '.tmp-'
// O_NOFOLLOW: a symlink planted inside the namespace is never followed out of it.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

function storageError(error: unknown, action: string): never {
  if (isCirclesError(error)) throw error
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'ELOOP') throw circlesError('INVALID_NAME', 'Document is a symbolic link; it is not followed')
  const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : `the file system refused (${code ?? 'unknown'})`
  throw circlesError('STORAGE_ERROR', `Cannot ${action}: ${why}`)
}

/**
 * One peer's storage namespace, `DB_PATH/<pubkey>/{data,config,logs}/`, with synchronous
 * operations (it is used from inside a running script, on a worker thread).
 *
 * Documents are JSON texts stored one per file in `data/`. Writes go to a temporary file that is
 * fsynced and renamed over the document, so a crash at any point leaves the old or the new
 * document, never a torn one. Temporary files left by a crash are removed by {@link open}.
 */
export class NamespaceStore {
  readonly root: string
  readonly dataDir: string

  constructor(root: string) {
    this.root = root
    this.dataDir = join(root, 'data')
  }

  /** Create the namespace directories (mode 0700) and sweep temporary files a crash left behind. */
  open(): void {
    for (const dir of [this.root, ...NAMESPACE_DIRS.map((d) => join(this.root, d))]) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        if (!lstatSync(dir).isDirectory()) throw circlesError('STORAGE_ERROR', `${dir} is not a directory`)
      } catch (error) {
        storageError(error, 'open the namespace')
      }
    }
    for (const file of readdirSync(this.dataDir)) {
      if (file.startsWith(TEMP_PREFIX)) unlinkSync(join(this.dataDir, file))
    }
  }

  private path(name: unknown, quota: StorageQuota): string {
    return join(this.dataDir, encodeDocumentName(validateDocumentName(name, quota.maxNameBytes)))
  }

  /** The JSON text of a document, or `undefined` when it does not exist. */
  read(name: unknown, quota: StorageQuota): string | undefined {
    const path = this.path(name, quota)
    let fd: number
    try {
      fd = openSync(path, READ_FLAGS)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      return storageError(error, 'read the document')
    }
    try {
      if (!fstatSync(fd).isFile()) throw circlesError('INVALID_NAME', 'Document is not a regular file')
      return readFileSync(fd, 'utf8')
    } catch (error) {
      return storageError(error, 'read the document')
    } finally {
      closeSync(fd)
    }
  }

  /**
   * Atomically replace a document with `text`. `usedBytes` is the namespace's current total;
   * the new total is returned. Throws QUOTA_EXCEEDED before touching the disk when the document
   * or the namespace would be over quota, STORAGE_ERROR when the disk refuses.
   */
  write(name: unknown, text: string, usedBytes: number, quota: StorageQuota): number {
    const path = this.path(name, quota)
    const size = Buffer.byteLength(text)
    if (size > quota.maxDocumentBytes) {
      throw circlesError('QUOTA_EXCEEDED', `Document is ${size} bytes; the limit is ${quota.maxDocumentBytes}`, {
        limit: quota.maxDocumentBytes,
      })
    }
    const previous = this.sizeOf(path)
    const next = usedBytes - previous + size
    if (next > quota.maxNamespaceBytes) {
      throw circlesError('QUOTA_EXCEEDED', `Namespace would hold ${next} bytes; the limit is ${quota.maxNamespaceBytes}`, {
        limit: quota.maxNamespaceBytes,
      })
    }
    const temp = join(this.dataDir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`)
    let fd: number | undefined
    try {
      fd = openSync(temp, WRITE_FLAGS, 0o600)
      const buffer = Buffer.from(text)
      let offset = 0
      while (offset < buffer.length) offset += writeSync(fd, buffer, offset)
      fsyncSync(fd)
      closeSync(fd)
      fd = undefined
      renameSync(temp, path)
    } catch (error) {
      if (fd !== undefined) closeSync(fd)
      try {
        unlinkSync(temp)
      } catch {
        // The temporary file may not exist; open() sweeps any that remain.
      }
      storageError(error, 'write the document')
    }
    return next
  }

  /** Delete a document. Returns the bytes freed (0 when it did not exist). */
  remove(name: unknown, quota: StorageQuota): number {
    const path = this.path(name, quota)
    const size = this.sizeOf(path)
    try {
      unlinkSync(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
      storageError(error, 'delete the document')
    }
    return size
  }

  /** Names of the documents starting with `prefix`, sorted. */
  list(prefix: unknown): string[] {
    if (typeof prefix !== 'string') throw circlesError('INVALID_NAME', 'list_data prefix must be a string')
    let files: string[]
    try {
      files = readdirSync(this.dataDir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      return storageError(error, 'list documents')
    }
    const names: string[] = []
    for (const file of files) {
      const name = decodeDocumentName(file)
      if (name !== undefined && name.startsWith(prefix)) names.push(name)
    }
    return names.sort()
  }

  /** Total bytes of the namespace's documents. */
  usage(): number {
    let total = 0
    let files: string[]
    try {
      files = readdirSync(this.dataDir)
    } catch {
      return 0
    }
    for (const file of files) {
      if (decodeDocumentName(file) !== undefined) total += this.sizeOf(join(this.dataDir, file))
    }
    return total
  }

  private sizeOf(path: string): number {
    try {
      const info = lstatSync(path)
      return info.isFile() ? info.size : 0
    } catch {
      return 0
    }
  }
}

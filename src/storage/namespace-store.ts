import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  type Dirent,
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { circlesError, isCirclesError } from '../errors/index.js'
import { documentCostBytes } from './document-cost.js'
import { decodeDocumentName, encodeDocumentName, validateDocumentName, validateListPrefix } from './document-name.js'
import { DirectorySyncError, replaceFileSync } from './durable-file.js'
import { fsyncDirectory } from './fsync-directory.js'
import { NAMESPACE_DIRS } from './layout.js'
import { parseListOptions } from './list-options.js'
import { NameIndex } from './name-index.js'
import { threadNameIndexCache, type NameIndexCache } from './name-index-cache.js'

export interface StorageQuota {
  /** Largest single document, in bytes of serialised JSON. */
  readonly maxDocumentBytes: number
  /** Largest total cost of the namespace's documents (see {@link documentCostBytes}). */
  readonly maxNamespaceBytes: number
  /** Most documents in the namespace; past it only existing documents can be written. */
  readonly maxDocuments: number
  /** Longest document name, in UTF-8 bytes. */
  readonly maxNameBytes: number
}

/** What a namespace holds, as charged against its quota. */
export interface NamespaceUsage {
  /** Sum of {@link documentCostBytes} over the documents. */
  readonly bytes: number
  readonly documents: number
}

export interface NamespaceStoreOptions {
  /** Where listing indexes are kept; default: the one cache of this thread. */
  readonly indexCache?: NameIndexCache
  /**
   * Called with a document's name once its new text is on disk in a temporary file, just before
   * the rename publishes it: a seam for tests that must stop a write at that point (the
   * `write-pause` fault). Absent in production.
   */
  readonly beforeRename?: (name: string) => void
}

const TEMP_PREFIX = '.tmp-'
// O_NOFOLLOW: a symlink planted inside the namespace is never followed out of it.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW

function storageError(error: unknown, action: string, consequence = ''): never {
  if (isCirclesError(error)) throw error
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'ELOOP') throw circlesError('INVALID_NAME', 'Document is a symbolic link; it is not followed')
  const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : `the file system refused (${code ?? 'unknown'})`
  throw circlesError('STORAGE_ERROR', `Cannot ${action}: ${why}${consequence}`)
}

interface Located {
  readonly name: string
  readonly file: string
  readonly path: string
}

/**
 * One peer's storage namespace, `DB_PATH/<pubkey>/{data,config,logs}/`, with synchronous
 * operations: it is called from inside a running script, on a sandbox worker thread.
 *
 * **Single writer.** The store object keeps the namespace's usage — the total cost of its
 * documents and their number — measured once by {@link open} and updated by every
 * {@link write} and {@link remove}. That is exact only while this object is the namespace's
 * only writer: the node pins each namespace to one sandbox thread, which owns its store.
 *
 * **Durability.** A write goes to a temporary file that is fsynced, renamed over the document,
 * and then the directory is fsynced (a rename is durable only once its directory is): a crash at
 * any point leaves the old or the new document, never a torn one. A delete unlinks, then fsyncs
 * the directory. Temporary files a crash left behind are removed by {@link open}.
 *
 * **Quotas** are checked before the disk is touched: the document's size, the number of
 * documents (for a new document), and the namespace's total cost (for a write that grows it;
 * shrinking, overwriting in place and deleting are always possible).
 *
 * @example
 * const store = new NamespaceStore('/data/02ab…')
 * store.open()                                   // create, sweep, measure
 * store.write('posts/1', '{"text":"hi"}', quota)
 * store.usage                                    // { bytes: 4107, documents: 1 }
 * store.list('posts/', { limit: 100 })           // ['posts/1']
 * store.remove('posts/1', quota)                 // true
 */
export class NamespaceStore {
  readonly root: string
  readonly dataDir: string
  private readonly indexCache: NameIndexCache
  private readonly beforeRename: ((name: string) => void) | undefined
  private opened = false
  private bytes = 0
  private documents = 0

  constructor(root: string, options: NamespaceStoreOptions = {}) {
    this.root = root
    this.dataDir = join(root, 'data')
    this.indexCache = options.indexCache ?? threadNameIndexCache
    this.beforeRename = options.beforeRename
  }

  /**
   * Create the namespace directories (mode 0700), sweep temporary files a crash left behind, and
   * measure the namespace's usage from the disk. Called again, it measures again. The other
   * operations call it first if nobody has.
   */
  open(): void {
    try {
      for (const dir of [this.root, ...NAMESPACE_DIRS.map((d) => join(this.root, d))]) {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        if (!lstatSync(dir).isDirectory()) throw circlesError('STORAGE_ERROR', `${dir} is not a directory`)
      }
      // A directory is an entry in its parent: unless the parents are synced, a crash could lose
      // a new namespace (created here or by whoever registered the peer) with the documents
      // already synced inside it. Done at every open, whoever created the directories.
      fsyncDirectory(dirname(this.root))
      fsyncDirectory(this.root)
      let bytes = 0
      let documents = 0
      for (const entry of readdirSync(this.dataDir, { withFileTypes: true })) {
        if (entry.name.startsWith(TEMP_PREFIX)) {
          unlinkSync(join(this.dataDir, entry.name))
          continue
        }
        if (!isDocumentEntry(entry)) continue
        const size = this.existingSize(join(this.dataDir, entry.name))
        if (size === undefined) continue
        bytes += documentCostBytes(size, Buffer.byteLength(entry.name))
        documents++
      }
      this.bytes = bytes
      this.documents = documents
      this.opened = true
      // Whatever index this store had was built against the figures just replaced.
      this.indexCache.forget(this)
    } catch (error) {
      storageError(error, 'open the namespace')
    }
  }

  /** The namespace's usage as charged against its quota (opens the namespace first if needed). */
  get usage(): NamespaceUsage {
    this.ensureOpen()
    return { bytes: this.bytes, documents: this.documents }
  }

  /** The JSON text of a document, or `undefined` when it does not exist. */
  read(name: unknown, quota: StorageQuota): string | undefined {
    const { path } = this.locate(name, quota)
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
   * Atomically and durably replace (or create) a document with `text`, and update the usage.
   * Throws QUOTA_EXCEEDED before touching the disk when the document, the number of documents or
   * the namespace's total cost would be over quota; STORAGE_ERROR when the disk refuses (the old
   * document is then intact — unless only the final directory sync failed, which the message
   * says: the new document is in place but a crash could still undo it).
   */
  write(name: unknown, text: string, quota: StorageQuota): void {
    this.ensureOpen()
    const doc = this.locate(name, quota)
    const size = Buffer.byteLength(text)
    if (size > quota.maxDocumentBytes) {
      throw circlesError('QUOTA_EXCEEDED', `Document is ${size} bytes; the limit is ${quota.maxDocumentBytes}`, {
        limit: quota.maxDocumentBytes,
      })
    }
    const previous = this.existingSize(doc.path)
    const isNew = previous === undefined
    if (isNew && this.documents >= quota.maxDocuments) {
      throw circlesError(
        'QUOTA_EXCEEDED',
        `Namespace holds ${this.documents} documents; the limit is ${quota.maxDocuments} (overwrite or delete one instead)`,
        { limit: quota.maxDocuments },
      )
    }
    const fileBytes = Buffer.byteLength(doc.file)
    const nextBytes = this.bytes - (previous === undefined ? 0 : documentCostBytes(previous, fileBytes)) + documentCostBytes(size, fileBytes)
    if (nextBytes > this.bytes && nextBytes > quota.maxNamespaceBytes) {
      throw circlesError('QUOTA_EXCEEDED', `Namespace would use ${nextBytes} bytes; the limit is ${quota.maxNamespaceBytes}`, {
        limit: quota.maxNamespaceBytes,
      })
    }
    try {
      // A temporary file that a crash leaves behind is swept by open().
      replaceFileSync(doc.path, text, {
        tempName: `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`,
        beforeRename: () => this.beforeRename?.(doc.name),
        renamed: () => {
          // The rename is done: from here the figures follow the disk, whatever the directory sync says.
          this.bytes = nextBytes
          if (isNew) {
            this.documents++
            this.indexCache.added(this, doc.name)
          }
        },
      })
    } catch (error) {
      if (error instanceof DirectorySyncError) {
        storageError(error.cause, 'make the write durable', '; the new document is in place but a crash could still undo it')
      }
      storageError(error, 'write the document')
    }
  }

  /** Delete a document, durably. Returns whether it existed. */
  remove(name: unknown, quota: StorageQuota): boolean {
    this.ensureOpen()
    const doc = this.locate(name, quota)
    const previous = this.existingSize(doc.path)
    try {
      unlinkSync(doc.path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
      storageError(error, 'delete the document')
    }
    // Only regular files were counted (a planted symlink can be deleted, but was never charged).
    if (previous !== undefined) {
      this.bytes -= documentCostBytes(previous, Buffer.byteLength(doc.file))
      this.documents--
      this.indexCache.removed(this, doc.name)
    }
    try {
      fsyncDirectory(this.dataDir)
    } catch (error) {
      storageError(error, 'make the delete durable', '; the document is gone but a crash could bring it back')
    }
    return true
  }

  /**
   * One page of the names of the documents starting with `prefix`, sorted (JavaScript string
   * order): at most `options.limit` names (default and maximum 1,000), strictly after
   * `options.after` when given. A page shorter than the limit is the last one; otherwise ask for
   * the next with `after` set to the page's last name. O(log n + limit), from a sorted index of
   * the namespace's names built on the first listing and kept up to date by writes and deletes.
   * Bad arguments are INVALID_NAME (see {@link parseListOptions}).
   *
   * @example
   * store.list('posts/', { limit: 2 })                     // ['posts/1', 'posts/2']
   * store.list('posts/', { limit: 2, after: 'posts/2' })   // ['posts/3']
   */
  list(prefix: unknown, options?: unknown): string[] {
    const checkedPrefix = validateListPrefix(prefix)
    const { limit, after } = parseListOptions(options)
    this.ensureOpen()
    return this.indexCache.page(this, () => NameIndex.from(this.readDocumentNames()), checkedPrefix, after, limit)
  }

  private ensureOpen(): void {
    if (!this.opened) this.open()
  }

  private locate(name: unknown, quota: StorageQuota): Located {
    const valid = validateDocumentName(name, quota.maxNameBytes)
    const file = encodeDocumentName(valid)
    return { name: valid, file, path: join(this.dataDir, file) }
  }

  private readDocumentNames(): string[] {
    let entries: Dirent[]
    try {
      entries = readdirSync(this.dataDir, { withFileTypes: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      return storageError(error, 'list documents')
    }
    const names: string[] = []
    for (const entry of entries) {
      const name = entry.isFile() ? decodeDocumentName(entry.name) : undefined
      if (name !== undefined) names.push(name)
    }
    return names
  }

  /** Size of the regular file at `path`; undefined when there is none (or something else is there). */
  private existingSize(path: string): number | undefined {
    try {
      const info = lstatSync(path)
      return info.isFile() ? info.size : undefined
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      return storageError(error, 'read the document')
    }
  }
}

/** A document is a regular file (never a link or a directory) whose name a document name encodes to. */
function isDocumentEntry(entry: Dirent): boolean {
  return entry.isFile() && decodeDocumentName(entry.name) !== undefined
}

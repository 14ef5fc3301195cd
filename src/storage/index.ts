export { NamespaceStore, type StorageQuota, type NamespaceUsage, type NamespaceStoreOptions } from './namespace-store.js'
export {
  validateDocumentName,
  validateListPrefix,
  encodeDocumentName,
  decodeDocumentName,
  hasLoneSurrogate,
} from './document-name.js'
export { documentCostBytes, STORAGE_BLOCK_BYTES } from './document-cost.js'
export { parseListOptions, type ListOptions, type ListPageRequest } from './list-options.js'
export { NameIndex } from './name-index.js'
export { NameIndexCache, threadNameIndexCache } from './name-index-cache.js'
export { fsyncDirectory } from './fsync-directory.js'
export { namespacePath, listNamespaces, NAMESPACE_DIRS } from './layout.js'
export { acquireDatabaseLock, DATABASE_LOCK_FILE } from './database-lock.js'
export type { DatabaseLockOptions, DatabaseLockHolder } from './database-lock-options.js'
export type { DatabaseLock, LockMechanism } from './held-database-lock.js'

export { NamespaceStore, type StorageQuota } from './namespace-store.js'
export { validateDocumentName, encodeDocumentName, decodeDocumentName } from './document-name.js'
export { namespacePath, listNamespaces, NAMESPACE_DIRS } from './layout.js'

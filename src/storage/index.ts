export { NamespaceStore, type StorageQuota } from './namespace-store.js'
export { validateDocumentName, encodeDocumentName, decodeDocumentName } from './document-name.js'
export { namespacePath, listNamespaces } from './layout.js'

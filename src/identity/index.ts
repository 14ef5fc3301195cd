export * from './portable.js'
export { createNonce, NONCE_BYTES } from './nonce.js'
export { readKeyFile, writeKeyFile, loadOrCreateKeyFile, resolveKeyArgument, isSecretKeyArgument, keyPairFromText } from './key-file.js'

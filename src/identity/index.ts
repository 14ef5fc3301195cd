export { parsePublicKey, normalizePublicKey, isCanonicalPublicKey, type PublicKeyHex } from './public-key.js'
export { generateKeyPair, keyPairFromSecret, type KeyPair } from './keypair.js'
export {
  personalMessageHash,
  signPersonalMessage,
  verifyPersonalSignature,
  recoverPersonalSigner,
  type SignatureCheck,
} from './eip191.js'
export { createNonce, NONCE_BYTES } from './nonce.js'
export { readKeyFile, writeKeyFile, loadOrCreateKeyFile, resolveKeyArgument } from './key-file.js'

/**
 * The part of identity that runs anywhere, browsers included: keys, addresses, EIP-191
 * signatures (pure JavaScript, @noble only). The browser client imports this door; `index.ts`
 * adds what needs Node (nonces from node:crypto, key files on disk).
 */
export { parsePublicKey, normalizePublicKey, isCanonicalPublicKey, type PublicKeyHex } from './public-key.js'
export { parseAddress, addressOfUncompressedKey, addressOfPublicKey, checksumAddress, type AddressHex } from './address.js'
export {
  SIGN_IN_CHAIN_ID,
  SIGN_IN_LINE_NAMES,
  formatSignInMessage,
  parseSignInMessage,
  signInUri,
  type SignInFields,
} from './sign-in-message.js'
export { sameClaimant, type Claimant } from './claimant.js'
export { generateKeyPair, keyPairFromSecret, isSecretKeyHex, type KeyPair } from './keypair.js'
export {
  personalMessageHash,
  signPersonalMessage,
  verifyPersonalSignature,
  verifyPersonalSignatureByAddress,
  verifyClaim,
  recoverPersonalSigner,
  isSignatureHex,
  type SignatureCheck,
} from './eip191.js'

import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { circlesError } from '../errors/index.js'
import type { PublicKeyHex } from './public-key.js'

export interface KeyPair {
  /** 32-byte secret key, lowercase hex without `0x`. */
  readonly secretKey: string
  /** Canonical compressed public key. */
  readonly publicKey: PublicKeyHex
}

/** A fresh random secp256k1 key pair. */
export function generateKeyPair(): KeyPair {
  const secret = secp256k1.utils.randomSecretKey()
  return { secretKey: bytesToHex(secret), publicKey: bytesToHex(secp256k1.getPublicKey(secret, true)) }
}

const SECRET_KEY_RE = /^(?:0x)?[0-9a-fA-F]{64}$/

/** Whether `value` has the form of a secret key: 64 hex characters (optional `0x`). */
export function isSecretKeyHex(value: string): boolean {
  return SECRET_KEY_RE.test(value)
}

/** The key pair of a secret key given as 64 hex characters (optional `0x`). */
export function keyPairFromSecret(secretHex: string): KeyPair {
  if (!isSecretKeyHex(secretHex)) {
    throw circlesError('KEY_FILE_INVALID', 'Secret key must be 64 hex characters')
  }
  const hex = secretHex.startsWith('0x') ? secretHex.slice(2) : secretHex
  const secret = hexToBytes(hex.toLowerCase())
  if (!secp256k1.utils.isValidSecretKey(secret)) {
    throw circlesError('KEY_FILE_INVALID', 'Secret key is out of range for secp256k1')
  }
  return { secretKey: hex.toLowerCase(), publicKey: bytesToHex(secp256k1.getPublicKey(secret, true)) }
}

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

/** The key pair of a secret key given as 64 hex characters (optional `0x`). */
export function keyPairFromSecret(secretHex: string): KeyPair {
  const hex = secretHex.startsWith('0x') ? secretHex.slice(2) : secretHex
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw circlesError('KEY_FILE_INVALID', 'Secret key must be 64 hex characters')
  }
  const secret = hexToBytes(hex.toLowerCase())
  if (!secp256k1.utils.isValidSecretKey(secret)) {
    throw circlesError('KEY_FILE_INVALID', 'Secret key is out of range for secp256k1')
  }
  return { secretKey: hex.toLowerCase(), publicKey: bytesToHex(secp256k1.getPublicKey(secret, true)) }
}

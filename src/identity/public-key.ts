import { secp256k1 } from '@noble/curves/secp256k1.js'
import { circlesError } from '../errors/index.js'

/** A public key in canonical form: compressed SEC1, lowercase hex, 66 characters. */
export type PublicKeyHex = string

const COMPRESSED_RE = /^0[23][0-9a-fA-F]{64}$/
const UNCOMPRESSED_RE = /^04[0-9a-fA-F]{128}$/

/**
 * Parse a secp256k1 public key given as hex (compressed `02`/`03`, or uncompressed `04`, with
 * an optional `0x`) and return its canonical compressed lowercase form. Anything else, points
 * off the curve included, throws `INVALID_PUBLIC_KEY`.
 *
 * @example
 * parsePublicKey('0x04' + x + y) // → '02…' or '03…'
 */
export function parsePublicKey(input: unknown): PublicKeyHex {
  if (typeof input !== 'string') {
    throw circlesError('INVALID_PUBLIC_KEY', 'Public key must be a hex string')
  }
  const hex = input.startsWith('0x') || input.startsWith('0X') ? input.slice(2) : input
  if (!COMPRESSED_RE.test(hex) && !UNCOMPRESSED_RE.test(hex)) {
    throw circlesError('INVALID_PUBLIC_KEY')
  }
  try {
    return secp256k1.Point.fromHex(hex.toLowerCase()).toHex(true)
  } catch {
    throw circlesError('INVALID_PUBLIC_KEY', 'Public key is not a point on secp256k1')
  }
}

/** True when `value` is already a canonical public key (cheap syntactic check, no curve math). */
export function isCanonicalPublicKey(value: unknown): value is PublicKeyHex {
  return typeof value === 'string' && value.length === 66 && /^0[23][0-9a-f]{64}$/.test(value)
}

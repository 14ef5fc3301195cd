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
  const key = normalizePublicKey(input)
  try {
    secp256k1.Point.fromHex(key)
  } catch {
    throw circlesError('INVALID_PUBLIC_KEY', 'Public key is not a point on secp256k1')
  }
  return key
}

const P = secp256k1.Point.CURVE().p

/**
 * The boundary's cheap form of {@link parsePublicKey}, for untrusted input on hot paths (every
 * frame's params, every URL): the same syntax rules and normalisation, and x below the field
 * prime; an uncompressed key must satisfy y² = x³ + 7 (a few multiplications). What it skips is
 * the square root that decides whether a compressed x is on the curve (about 70 µs). It is paid
 * only where the curve math is needed anyway: `fetch_nonce` derives the key's address for the
 * sign-in message (INVALID_PUBLIC_KEY there; the call is rate-limited per remote address), and
 * no signature can recover such a key.
 */
export function normalizePublicKey(input: unknown): PublicKeyHex {
  if (typeof input !== 'string') throw circlesError('INVALID_PUBLIC_KEY', 'Public key must be a hex string')
  const hex = (input.startsWith('0x') || input.startsWith('0X') ? input.slice(2) : input).toLowerCase()
  if (COMPRESSED_RE.test(hex)) {
    if (BigInt(`0x${hex.slice(2)}`) >= P) throw circlesError('INVALID_PUBLIC_KEY', 'Public key is not a point on secp256k1')
    return hex
  }
  if (!UNCOMPRESSED_RE.test(hex)) throw circlesError('INVALID_PUBLIC_KEY')
  const x = BigInt(`0x${hex.slice(2, 66)}`)
  const y = BigInt(`0x${hex.slice(66)}`)
  if (x >= P || y >= P || (y * y - (x * x * x + 7n)) % P !== 0n) {
    throw circlesError('INVALID_PUBLIC_KEY', 'Public key is not a point on secp256k1')
  }
  return `${y & 1n ? '03' : '02'}${hex.slice(2, 66)}`
}

/** True when `value` is already a canonical public key (cheap syntactic check, no curve math). */
export function isCanonicalPublicKey(value: unknown): value is PublicKeyHex {
  return typeof value === 'string' && value.length === 66 && /^0[23][0-9a-f]{64}$/.test(value)
}

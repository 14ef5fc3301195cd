import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { addressOfUncompressedKey, type AddressHex } from './address.js'
import type { Claimant } from './claimant.js'
import type { PublicKeyHex } from './public-key.js'

const CURVE_ORDER = secp256k1.Point.CURVE().n
const HALF_ORDER = CURVE_ORDER >> 1n
const SIGNATURE_RE = /^(?:0x)?[0-9a-fA-F]{130}$/

/** Whether `value` has the form of a signature: r‖s‖v, 65 bytes as 130 hex (optional `0x`). */
export function isSignatureHex(value: unknown): value is string {
  return typeof value === 'string' && SIGNATURE_RE.test(value)
}

/**
 * keccak256("\x19Ethereum Signed Message:\n" + byteLength(message) + message), the digest an
 * Ethereum wallet signs for `personal_sign` (EIP-191 version 0x45).
 */
export function personalMessageHash(message: string): Uint8Array {
  const body = utf8ToBytes(message)
  const prefix = utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`)
  const data = new Uint8Array(prefix.length + body.length)
  data.set(prefix, 0)
  data.set(body, prefix.length)
  return keccak_256(data)
}

/**
 * Sign `message` as `personal_sign` does; returns `0x` + r‖s‖v hex with v = 27/28.
 *
 * @example
 * const signature = signPersonalMessage(nonce, keyPair.secretKey)
 */
export function signPersonalMessage(message: string, secretKeyHex: string): string {
  const hex = secretKeyHex.startsWith('0x') ? secretKeyHex.slice(2) : secretKeyHex
  const sig = secp256k1.sign(personalMessageHash(message), hexToBytes(hex), { prehash: false, format: 'recovered' })
  // noble's "recovered" layout is recovery‖r‖s; Ethereum's is r‖s‖v with v = 27 + recovery.
  const recovery = sig[0]!
  return `0x${bytesToHex(sig.subarray(1))}${(27 + recovery).toString(16)}`
}

export type SignatureCheck =
  | { readonly ok: true; readonly publicKey: PublicKeyHex }
  | { readonly ok: false; readonly reason: 'malformed' | 'high_s' | 'bad_v' | 'unrecoverable' | 'mismatch' }

type Recovered = { readonly ok: true; readonly point: InstanceType<typeof secp256k1.Point> } | Extract<SignatureCheck, { ok: false }>

/**
 * Recover the signer of an EIP-191 personal message and compare it with `expected` (canonical).
 * Accepts 65-byte r‖s‖v hex with an optional `0x`, v ∈ {0, 1, 27, 28}; rejects high-s.
 * Never throws for bad input: the reason is in the result.
 */
export function verifyPersonalSignature(message: string, signature: string, expected: PublicKeyHex): SignatureCheck {
  const recovered = recoverPersonalSigner(message, signature)
  if (!recovered.ok) return recovered
  return recovered.publicKey === expected ? recovered : { ok: false, reason: 'mismatch' }
}

/**
 * Recover the signer of an EIP-191 personal message and check that its Ethereum address is
 * `address` (canonical, see {@link parseAddress}). On success the result carries the recovered
 * public key: that key, not the address, is who the signer is.
 */
export function verifyPersonalSignatureByAddress(message: string, signature: string, address: AddressHex): SignatureCheck {
  const recovered = recoverPoint(message, signature)
  if (!recovered.ok) return recovered
  if (addressOfUncompressedKey(recovered.point.toBytes(false)) !== address) return { ok: false, reason: 'mismatch' }
  return { ok: true, publicKey: recovered.point.toHex(true) }
}

/** Check a signature against what the signer claimed to be: a public key or an address. */
export function verifyClaim(message: string, signature: string, claimant: Claimant): SignatureCheck {
  switch (claimant.type) {
    case 'pubkey':
      return verifyPersonalSignature(message, signature, claimant.pubkey)
    case 'address':
      return verifyPersonalSignatureByAddress(message, signature, claimant.address)
  }
}

/** Recover the canonical public key that signed `message` (see {@link verifyPersonalSignature}). */
export function recoverPersonalSigner(message: string, signature: string): SignatureCheck {
  const recovered = recoverPoint(message, signature)
  return recovered.ok ? { ok: true, publicKey: recovered.point.toHex(true) } : recovered
}

function recoverPoint(message: string, signature: string): Recovered {
  if (!isSignatureHex(signature)) return { ok: false, reason: 'malformed' }
  const hex = signature.length === 132 ? signature.slice(2) : signature
  const r = BigInt(`0x${hex.slice(0, 64)}`)
  const s = BigInt(`0x${hex.slice(64, 128)}`)
  const v = Number.parseInt(hex.slice(128, 130), 16)
  const recovery = v >= 27 ? v - 27 : v
  if (recovery !== 0 && recovery !== 1) return { ok: false, reason: 'bad_v' }
  if (r <= 0n || r >= CURVE_ORDER || s <= 0n || s >= CURVE_ORDER) return { ok: false, reason: 'malformed' }
  if (s > HALF_ORDER) return { ok: false, reason: 'high_s' }
  try {
    return { ok: true, point: new secp256k1.Signature(r, s, recovery).recoverPublicKey(personalMessageHash(message)) }
  } catch {
    return { ok: false, reason: 'unrecoverable' }
  }
}

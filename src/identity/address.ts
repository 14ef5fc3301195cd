import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { circlesError } from '../errors/index.js'
import type { PublicKeyHex } from './public-key.js'

/** An Ethereum address in canonical form: `0x` + 40 lowercase hex characters. */
export type AddressHex = string

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/

/**
 * The canonical form of an Ethereum address (`0x` + 40 hex, any case), or `undefined` when
 * `input` is not one. Case is ignored: an EIP-55 checksum is a typing aid for people, and the
 * node compares addresses it derives itself, so a wrong checksum cannot make a match.
 *
 * @example
 * parseAddress('0xAbC…') // → '0xabc…'
 */
export function parseAddress(input: unknown): AddressHex | undefined {
  return typeof input === 'string' && ADDRESS_RE.test(input) ? input.toLowerCase() : undefined
}

/**
 * The address of a public key given as uncompressed SEC1 bytes (`04‖x‖y`):
 * the last 20 bytes of keccak256(x‖y).
 */
export function addressOfUncompressedKey(uncompressed: Uint8Array): AddressHex {
  return `0x${bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(12))}`
}

/**
 * The address of a canonical public key. Decompressing the key costs a square root (about
 * 70 µs); a key whose x has no point on the curve is INVALID_PUBLIC_KEY.
 */
export function addressOfPublicKey(pubkey: PublicKeyHex): AddressHex {
  let point: InstanceType<typeof secp256k1.Point>
  try {
    point = secp256k1.Point.fromHex(pubkey)
  } catch {
    throw circlesError('INVALID_PUBLIC_KEY', 'Public key is not a point on secp256k1')
  }
  return addressOfUncompressedKey(point.toBytes(false))
}

/**
 * An address in its EIP-55 mixed-case form: each hex letter upper-cased where the same nibble of
 * keccak256(the lowercase hex, as text) is 8 or more. Sign-in messages carry this form.
 *
 * @example
 * checksumAddress('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed') // → '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'
 */
export function checksumAddress(address: AddressHex): string {
  const hex = address.slice(2).toLowerCase()
  const hash = bytesToHex(keccak_256(utf8ToBytes(hex)))
  let out = '0x'
  for (let i = 0; i < hex.length; i++) out += Number.parseInt(hash[i]!, 16) >= 8 ? hex[i]!.toUpperCase() : hex[i]!
  return out
}

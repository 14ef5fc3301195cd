import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex } from '@noble/hashes/utils.js'

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

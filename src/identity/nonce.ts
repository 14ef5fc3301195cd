import { randomBytes } from 'node:crypto'

/** Random bytes in a nonce: 32, as docs/protocol.md ("Authentication") tells clients. */
export const NONCE_BYTES = 32

/** A fresh single-use nonce: 32 random bytes, base64. */
export function createNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64')
}

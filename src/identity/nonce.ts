import { randomBytes } from 'node:crypto'

/** Random bytes in a nonce (DESIGN §3 asks for at least 32). */
export const NONCE_BYTES = 32

/** A fresh single-use nonce: 32 random bytes, base64. */
export function createNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64')
}

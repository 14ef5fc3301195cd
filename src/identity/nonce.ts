import { randomBytes } from 'node:crypto'

/** Random bytes in a nonce: 32, as docs/protocol.md ("The sign-in message") tells clients. */
export const NONCE_BYTES = 32

/**
 * A fresh single-use nonce: 32 random bytes as 64 lowercase hex characters — letters and digits
 * only, as EIP-4361 requires of a sign-in message's nonce.
 */
export function createNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex')
}

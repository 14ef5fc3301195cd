import type { Claimant } from '../identity/index.js'

/** Messages to a verifier thread. */
export type VerifyTask = {
  readonly type: 'verify'
  readonly message: string
  readonly signature: string
  /** The key, or the address, the signature must recover to. */
  readonly claimant: Claimant
}

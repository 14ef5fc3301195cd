/** Messages to a verifier thread. */
export type VerifyTask = {
  readonly type: 'verify'
  readonly message: string
  readonly signature: string
  readonly pubkey: string
}

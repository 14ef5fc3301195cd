import type { AddressHex } from './address.js'
import type { PublicKeyHex } from './public-key.js'

/**
 * Who a connection says it is before proving it: a public key, or an Ethereum address (all a
 * browser wallet exposes). Either way the proven caller is a public key, recovered from the
 * signature.
 */
export type Claimant =
  | { readonly type: 'pubkey'; readonly pubkey: PublicKeyHex }
  | { readonly type: 'address'; readonly address: AddressHex }

/** Whether two claims name the same key or address (both canonical). */
export function sameClaimant(a: Claimant, b: Claimant): boolean {
  if (a.type === 'pubkey') return b.type === 'pubkey' && a.pubkey === b.pubkey
  return b.type === 'address' && a.address === b.address
}

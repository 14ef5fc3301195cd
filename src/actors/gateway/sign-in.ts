import { addressOfPublicKey, checksumAddress, createNonce, formatSignInMessage, type Claimant, type PublicKeyHex } from '../../identity/index.js'

/** Where a connection's client reached the node, as the sign-in messages of that connection name it. */
export interface SignInSite {
  /** The Host the client sent (host and port as it dialled them), once the node has accepted it. */
  readonly domain: string
  /** See {@link signInUri}. */
  readonly uri: string
}

/**
 * The text `fetch_nonce` asks a client to sign: an EIP-4361 message naming the node's domain as
 * the client dialled it, the context, the signer's address and a fresh nonce. A client that checks
 * it before signing knows where its signature is good — a relay that forwards it from another
 * node is caught by the domain — and the node verifies the signature against this exact text.
 * Throws INVALID_PUBLIC_KEY for a key with no point on the curve (its address cannot be derived).
 */
export function issueSignInMessage(
  site: SignInSite,
  context: PublicKeyHex,
  claimant: Claimant,
  ttlMs: number,
  now: number,
): { readonly message: string; readonly expiresAt: number } {
  const address = claimant.type === 'address' ? claimant.address : addressOfPublicKey(claimant.pubkey)
  const message = formatSignInMessage({
    domain: site.domain,
    address: checksumAddress(address),
    context,
    uri: site.uri,
    nonce: createNonce(),
    issuedAt: new Date(now).toISOString(),
    expirationTime: new Date(now + ttlMs).toISOString(),
  })
  return { message, expiresAt: Math.floor((now + ttlMs) / 1000) }
}

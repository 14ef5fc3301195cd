import { keyPairFromSecret, signPersonalMessage } from '../identity/portable.js'
import { InvalidOptionError } from './errors.js'

/**
 * Whatever can sign an EIP-191 personal message: the client never needs the secret key itself,
 * so keys can stay in a wallet. A signer with a `publicKey` authenticates with the protocol's
 * `{ pubkey }` form; one with only an `address` (browser wallets) with `{ address }`, and the
 * node recovers the key from the signature.
 *
 * @example
 * const signer: Signer = { address: '0x…', signMessage: (message) => myWallet.sign(message) }
 */
export interface Signer {
  /** secp256k1 public key, hex (compressed or uncompressed, optional 0x). */
  readonly publicKey?: string
  /** Ethereum address, 0x + 40 hex (any case). */
  readonly address?: string
  /** Sign `message` as `personal_sign` does; resolves to `0x` + r‖s‖v hex. */
  signMessage(message: string): Promise<string>
}

/**
 * A signer over a raw secp256k1 secret key (64 hex, optional 0x), signing locally.
 *
 * @example
 * const client = CirclesClient.builder(url).withKey(secretKeySigner(secretHex)).build()
 * // the same as .withKey(secretHex)
 */
export function secretKeySigner(secretKeyHex: string): Signer {
  let pair: ReturnType<typeof keyPairFromSecret>
  try {
    pair = keyPairFromSecret(secretKeyHex)
  } catch (error) {
    throw new InvalidOptionError(`secret key: ${(error as Error).message}`)
  }
  return {
    publicKey: pair.publicKey,
    signMessage: async (message) => signPersonalMessage(message, pair.secretKey),
  }
}

/** The part of an ethers v6 `Wallet` (or any ethers `Signer` with an `address`) the adapter uses. */
export interface EthersWalletLike {
  readonly address: string
  readonly signingKey?: { readonly publicKey: string }
  signMessage(message: string): Promise<string>
}

/**
 * A signer over an ethers v6 `Wallet` (`new Wallet(privateKey)`, `Wallet.fromPhrase(…)`, a
 * `JsonRpcSigner`…): ethers signs, the client never sees the key.
 *
 * @example
 * import { Wallet } from 'ethers'
 * const client = CirclesClient.builder(url).withKey(ethersSigner(new Wallet(privateKey))).build()
 */
export function ethersSigner(wallet: EthersWalletLike): Signer {
  const publicKey = wallet.signingKey?.publicKey
  return {
    address: wallet.address,
    ...(publicKey === undefined ? {} : { publicKey }),
    signMessage: (message) => wallet.signMessage(message),
  }
}

/** The part of a viem account (`privateKeyToAccount`, `mnemonicToAccount`, …) the adapter uses. */
export interface ViemAccountLike {
  readonly address: string
  readonly publicKey?: string
  signMessage(args: { message: string }): Promise<string>
}

/**
 * A signer over a viem local account: viem signs with `signMessage({ message })`.
 *
 * @example
 * import { privateKeyToAccount } from 'viem/accounts'
 * const client = CirclesClient.builder(url).withKey(viemSigner(privateKeyToAccount(privateKey))).build()
 */
export function viemSigner(account: ViemAccountLike): Signer {
  return {
    address: account.address,
    ...(account.publicKey === undefined ? {} : { publicKey: account.publicKey }),
    signMessage: (message) => account.signMessage({ message }),
  }
}

/** An EIP-1193 provider: `window.ethereum` in a browser with a wallet. */
export interface Eip1193Provider {
  request(args: { method: string; params?: readonly unknown[] }): Promise<unknown>
}

function utf8Hex(message: string): string {
  let hex = '0x'
  for (const byte of new TextEncoder().encode(message)) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/**
 * A signer over an EIP-1193 provider (a browser wallet): asks for an account
 * (`eth_requestAccounts`) unless `address` is given, then signs with `personal_sign`. A wallet
 * exposes no public key, so this signer authenticates with the `{ address }` form.
 *
 * @example
 * const signer = await eip1193Signer(window.ethereum)
 * const client = CirclesClient.builder(url).withKey(signer).build()
 */
export async function eip1193Signer(provider: Eip1193Provider, options: { address?: string } = {}): Promise<Signer> {
  let address = options.address
  if (address === undefined) {
    const accounts = await provider.request({ method: 'eth_requestAccounts' })
    if (!Array.isArray(accounts) || typeof accounts[0] !== 'string') {
      throw new InvalidOptionError('eip1193Signer: the wallet gave no account')
    }
    address = accounts[0]
  }
  const account = address
  return {
    address: account,
    async signMessage(message) {
      // The message as hex of its UTF-8 bytes, as ethers and viem send it: wallets show it as text.
      const signature = await provider.request({ method: 'personal_sign', params: [utf8Hex(message), account] })
      if (typeof signature !== 'string') throw new InvalidOptionError('eip1193Signer: personal_sign did not answer a signature')
      return signature
    },
  }
}

import type { PublicKeyHex } from './public-key.js'

/**
 * The EIP-155 chain id every sign-in message names. The message binds no on-chain state, but
 * EIP-4361 requires the field; 1 (Ethereum mainnet) is the one chain every wallet knows, so no
 * wallet asks to switch networks to show a sign-in (docs/protocol.md, "The sign-in message").
 */
export const SIGN_IN_CHAIN_ID = 1

/** The fields of a sign-in message: an EIP-4361 (Sign-In with Ethereum) message, as the node issues it. */
export interface SignInFields {
  /** Host and port as the client dialled them (the URL's authority). */
  readonly domain: string
  /** The signer's address, EIP-55 mixed case. */
  readonly address: string
  /** The context the connection talks to. */
  readonly context: PublicKeyHex
  /** `ws(s)://<domain>/`, or `ws(s)://<domain>/<context>` for a connection opened on a key path. */
  readonly uri: string
  /** 8 or more ASCII letters and digits. */
  readonly nonce: string
  /** RFC 3339, UTC. */
  readonly issuedAt: string
  /** RFC 3339, UTC. */
  readonly expirationTime: string
}

const PREAMBLE = ' wants you to sign in with your Ethereum account:'
const STATEMENT_PREFIX = 'Sign in to the Circles context '
const LABELS = ['URI', 'Version', 'Chain ID', 'Nonce', 'Issued At', 'Expiration Time'] as const

/**
 * The URI a sign-in message names: the scheme and authority dialled, then `/` for the port's
 * own circle or `/<key>` (compressed, lowercase) for a connection opened on a key path.
 */
export function signInUri(scheme: 'ws' | 'wss', domain: string, pathKey: PublicKeyHex | undefined): string {
  return `${scheme}://${domain}/${pathKey ?? ''}`
}

/** The message text: EIP-4361's layout, line by line, with no trailing newline. */
export function formatSignInMessage(fields: SignInFields): string {
  return [
    `${fields.domain}${PREAMBLE}`,
    fields.address,
    '',
    `${STATEMENT_PREFIX}${fields.context}.`,
    '',
    `URI: ${fields.uri}`,
    'Version: 1',
    `Chain ID: ${SIGN_IN_CHAIN_ID}`,
    `Nonce: ${fields.nonce}`,
    `Issued At: ${fields.issuedAt}`,
    `Expiration Time: ${fields.expirationTime}`,
  ].join('\n')
}

/** What labels the lines of a message, for naming the one that differs from what was expected. */
export const SIGN_IN_LINE_NAMES = ['domain', 'address', 'blank line', 'statement', 'blank line', ...LABELS.map((l) => l.toLowerCase())] as const

/**
 * The fields of a text laid out as {@link formatSignInMessage} lays it out, or `undefined`. Only
 * the layout is read here; whether each value is the right one is for the caller to decide
 * (the client rebuilds the whole text from what it expects and compares).
 */
export function parseSignInMessage(text: string): SignInFields | undefined {
  const lines = text.split('\n')
  if (lines.length !== SIGN_IN_LINE_NAMES.length) return undefined
  const [first, address, , statement] = lines as [string, string, string, string]
  if (!first.endsWith(PREAMBLE) || !statement.startsWith(STATEMENT_PREFIX) || !statement.endsWith('.')) return undefined
  const values: string[] = []
  for (const [i, label] of LABELS.entries()) {
    const line = lines[5 + i]!
    if (!line.startsWith(`${label}: `)) return undefined
    values.push(line.slice(label.length + 2))
  }
  const [uri, , , nonce, issuedAt, expirationTime] = values as [string, string, string, string, string, string]
  return {
    domain: first.slice(0, -PREAMBLE.length),
    address,
    context: statement.slice(STATEMENT_PREFIX.length, -1),
    uri,
    nonce,
    issuedAt,
    expirationTime,
  }
}

import {
  addressOfPublicKey,
  checksumAddress,
  formatSignInMessage,
  isCanonicalPublicKey,
  normalizePublicKey,
  parseSignInMessage,
  signInUri,
  SIGN_IN_LINE_NAMES,
  type AddressHex,
  type PublicKeyHex,
} from '../identity/portable.js'
import { SignInMismatchError } from './errors.js'

/** What a sign-in message must say, rebuilt from the URL the client dialled and its signer. */
export interface SignInTemplate {
  readonly domain: string
  /** Undefined when the URL's path names no context (the node refuses `fetch_nonce` there anyway). */
  readonly uri: string | undefined
  /** The signer's address, EIP-55. */
  readonly address: string
  /** The context, when the client knows it: from a `/<key>` path, or given. */
  readonly context: PublicKeyHex | undefined
}

/** The context key a URL's path names (`/<key>`), `null` for the port's own circle (`/`), undefined for neither. */
export function contextOfUrl(url: string): PublicKeyHex | null | undefined {
  const path = new URL(url).pathname.replace(/^\/+|\/+$/g, '')
  if (path === '') return null
  try {
    return normalizePublicKey(decodeURIComponent(path))
  } catch {
    return undefined
  }
}

/** The signer's address: derived from its public key when it has one (that is the claim sent), else its own. */
export function signerAddress(signer: { readonly publicKey?: string; readonly address?: string }): AddressHex {
  if (signer.publicKey !== undefined) return addressOfPublicKey(normalizePublicKey(signer.publicKey))
  return signer.address!.toLowerCase()
}

/** The template for a client of `url` signing as `address`, knowing the context `given` (or not). */
export function signInTemplate(url: string, address: AddressHex, given: PublicKeyHex | undefined): SignInTemplate {
  const parsed = new URL(url)
  const scheme = parsed.protocol === 'wss:' ? 'wss' : 'ws'
  const pathKey = contextOfUrl(url)
  return {
    domain: parsed.host,
    uri: pathKey === undefined ? undefined : signInUri(scheme, parsed.host, pathKey ?? undefined),
    address: checksumAddress(address),
    context: pathKey ?? given,
  }
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})$/

function readTime(text: string): number | undefined {
  const ms = RFC3339_RE.test(text) ? Date.parse(text) : Number.NaN
  if (!Number.isFinite(ms)) return undefined
  // Date.parse rolls a day that does not exist into the next month (2026-02-29 is March 1): the
  // date written must be the date read (the offset does not change the calendar date of the text).
  const offsetMs = /(?:Z|([+-])(\d{2}):(\d{2}))$/i.exec(text)
  const shift = offsetMs?.[1] === undefined ? 0 : (offsetMs[1] === '-' ? -1 : 1) * (Number(offsetMs[2]) * 60 + Number(offsetMs[3])) * 60_000
  return new Date(ms + shift).toISOString().slice(0, 10) === text.slice(0, 10) ? ms : undefined
}

/**
 * Check the text `fetch_nonce` answered against the template before anything signs it: every
 * line is rebuilt from what the client expects — only the nonce, the times and (when the client
 * does not know it) the context key are taken from the text, each checked on its own — and the
 * whole must be equal. Times must be within `skewMs` of `now`. Returns the refusal, or undefined.
 */
export function checkSignInMessage(
  text: string,
  expiresAt: number,
  template: SignInTemplate,
  now: number,
  skewMs: number,
): SignInMismatchError | undefined {
  const parsed = parseSignInMessage(text)
  if (parsed === undefined) return new SignInMismatchError('layout', 'the node sent a text that is not a Circles sign-in message (EIP-4361)')
  if (template.uri === undefined) return new SignInMismatchError('uri', 'the URL dialled names no context')
  if (!/^[A-Za-z0-9]{8,}$/.test(parsed.nonce)) return new SignInMismatchError('nonce', 'the nonce is not 8 or more letters and digits')
  if (template.context === undefined && !isCanonicalPublicKey(parsed.context)) {
    return new SignInMismatchError('statement', 'the statement names no context key')
  }
  const expected = formatSignInMessage({ ...parsed, domain: template.domain, address: template.address, uri: template.uri, context: template.context ?? parsed.context })
  if (expected !== text) {
    const want = expected.split('\n')
    const got = text.split('\n')
    const i = want.findIndex((line, n) => line !== got[n])
    return new SignInMismatchError(SIGN_IN_LINE_NAMES[i]!, `expected ${JSON.stringify(want[i])}, the node sent ${JSON.stringify(got[i]!.slice(0, 200))}`)
  }
  const issued = readTime(parsed.issuedAt)
  if (issued === undefined || Math.abs(issued - now) > skewMs) {
    return new SignInMismatchError('issued at', `"Issued At: ${parsed.issuedAt}" is more than ${skewMs} ms from this clock (${new Date(now).toISOString()})`)
  }
  const expires = readTime(parsed.expirationTime)
  if (expires === undefined || expires <= issued || expires < now - skewMs || Math.floor(expires / 1000) !== expiresAt) {
    return new SignInMismatchError('expiration time', `"Expiration Time: ${parsed.expirationTime}" is past, before the issue time, or not expires_at (${expiresAt})`)
  }
  return undefined
}

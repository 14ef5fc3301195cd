/**
 * The client's check of a sign-in message before anything signs it: the template rebuilt from
 * the URL dialled and the signer, and each way a node's text can differ from it — named by the
 * first line that differs — plus the clock checks of its times.
 */
import t from 'tap'
import { addressOfPublicKey, checksumAddress, formatSignInMessage, generateKeyPair } from '../../src/identity/portable.js'
import { checkSignInMessage, contextOfUrl, signerAddress, signInTemplate } from '../../src/client/sign-in-check.js'
import { SignInMismatchError } from '../../src/client/errors.js'

const SIGNER = generateKeyPair()
const ADDRESS = addressOfPublicKey(SIGNER.publicKey)
const CONTEXT = generateKeyPair().publicKey
const NOW = Date.parse('2026-03-01T12:00:00.000Z')
const SKEW = 60_000

function message(overrides: Partial<Parameters<typeof formatSignInMessage>[0]> = {}): string {
  return formatSignInMessage({
    domain: 'circle.example:8090',
    address: checksumAddress(ADDRESS),
    context: CONTEXT,
    uri: `ws://circle.example:8090/${CONTEXT}`,
    nonce: 'abcdEFGH1234',
    issuedAt: '2026-03-01T12:00:00.000Z',
    expirationTime: '2026-03-01T12:05:00.000Z',
    ...overrides,
  })
}
const EXPIRES_AT = Date.parse('2026-03-01T12:05:00.000Z') / 1000

t.test('contextOfUrl: a key path, the port own circle, or neither', async (t) => {
  t.equal(contextOfUrl(`ws://h:1/${CONTEXT}`), CONTEXT)
  t.equal(contextOfUrl(`ws://h:1/0x${CONTEXT.toUpperCase()}/`), CONTEXT, 'canonicalised, slashes trimmed')
  t.equal(contextOfUrl('ws://h:1/'), null)
  t.equal(contextOfUrl('ws://h:1'), null)
  t.equal(contextOfUrl('ws://h:1/not-a-key'), undefined)
  t.equal(contextOfUrl('ws://h:1/%E0%A4%A'), undefined, 'a bad escape is no key, not a throw')
})

t.test('signerAddress: from the public key when there is one', async (t) => {
  t.equal(signerAddress({ publicKey: SIGNER.publicKey }), ADDRESS)
  t.equal(signerAddress({ publicKey: SIGNER.publicKey, address: '0x' + '1'.repeat(40) }), ADDRESS, 'the key is the claim sent')
  t.equal(signerAddress({ address: checksumAddress(ADDRESS) }), ADDRESS, 'lowercased')
})

t.test('signInTemplate: domain, uri, checksummed address and context from the URL', async (t) => {
  t.same(signInTemplate(`ws://Circle.Example:8090/${CONTEXT}`, ADDRESS, undefined), {
    domain: 'circle.example:8090',
    uri: `ws://circle.example:8090/${CONTEXT}`,
    address: checksumAddress(ADDRESS),
    context: CONTEXT,
  })
  t.same(signInTemplate('wss://circle.example/', ADDRESS, CONTEXT), { domain: 'circle.example', uri: 'wss://circle.example/', address: checksumAddress(ADDRESS), context: CONTEXT }, 'the port circle, context given')
  t.equal(signInTemplate('wss://circle.example/', ADDRESS, undefined).context, undefined)
  t.equal(signInTemplate('ws://circle.example/junk', ADDRESS, undefined).uri, undefined, 'a path that is no key names no uri')
})

const template = () => signInTemplate(`ws://circle.example:8090/${CONTEXT}`, ADDRESS, undefined)

function mismatch(text: string, expiresAt = EXPIRES_AT, tpl = template(), now = NOW): SignInMismatchError | undefined {
  return checkSignInMessage(text, expiresAt, tpl, now, SKEW)
}

t.test('the expected text passes', async (t) => {
  t.equal(mismatch(message()), undefined)
  t.equal(mismatch(message(), EXPIRES_AT, template(), NOW + SKEW), undefined, 'issued exactly skewMs ago')
  const rootTpl = signInTemplate('ws://circle.example:8090/', ADDRESS, undefined)
  t.equal(mismatch(message({ uri: 'ws://circle.example:8090/' }), EXPIRES_AT, rootTpl), undefined, 'the port circle: the context is read from the text')
})

t.test('each differing line is named', async (t) => {
  const other = generateKeyPair().publicKey
  const cases: [string, string][] = [
    [message({ domain: 'evil.example:8090' }), 'domain'],
    [message({ address: checksumAddress(addressOfPublicKey(other)) }), 'address'],
    [message({ address: ADDRESS }), 'address'],
    [message({ context: other }), 'statement'],
    [message({ uri: `ws://circle.example:8090/${other}` }), 'uri'],
    [message().replace('Version: 1', 'Version: 2'), 'version'],
    [message().replace('Chain ID: 1', 'Chain ID: 5'), 'chain id'],
  ]
  for (const [text, field] of cases) {
    const e = mismatch(text)
    t.type(e, SignInMismatchError, field)
    t.equal(e?.field, field, field)
    t.equal(e?.code, 'SIGN_IN_MISMATCH')
  }
})

t.test('layout, nonce and context-key refusals', async (t) => {
  t.equal(mismatch('sign this')?.field, 'layout')
  t.equal(mismatch(`${message()}\n`)?.field, 'layout', 'a trailing line')
  t.equal(mismatch(message({ nonce: 'short' }))?.field, 'nonce')
  t.equal(mismatch(message({ nonce: 'abcd efgh 12' }))?.field, 'nonce')
  t.equal(mismatch(message(), EXPIRES_AT, signInTemplate('ws://circle.example:8090/junk', ADDRESS, undefined))?.field, 'uri', 'a URL naming no context')
  const rootTpl = signInTemplate('ws://circle.example:8090/', ADDRESS, undefined)
  t.equal(mismatch(message({ uri: 'ws://circle.example:8090/', context: 'whatever' }), EXPIRES_AT, rootTpl)?.field, 'statement', 'no key in the statement')
})

t.test('times: issued within the skew, expiring after issue, not past, and equal to expires_at', async (t) => {
  t.equal(mismatch(message(), EXPIRES_AT, template(), NOW + SKEW + 1)?.field, 'issued at', 'issued more than skewMs ago')
  t.equal(mismatch(message(), EXPIRES_AT, template(), NOW - SKEW - 1)?.field, 'issued at', 'issued in the future')
  t.equal(mismatch(message({ issuedAt: '2026-03-01 12:00:00Z' }))?.field, 'issued at', 'not RFC 3339')
  t.equal(mismatch(message({ expirationTime: '2026-03-01T12:00:00.000Z' }))?.field, 'expiration time', 'expires at its issue')
  t.equal(mismatch(message(), EXPIRES_AT + 1)?.field, 'expiration time', 'not expires_at')
  t.equal(mismatch(message({ issuedAt: '2026-03-01T13:00:00+01:00' }))?.field, undefined, 'an offset time that is the same instant')
  const past = message({ issuedAt: '2026-03-01T11:59:30.000Z', expirationTime: '2026-03-01T11:59:40.000Z' })
  t.equal(mismatch(past, Date.parse('2026-03-01T11:59:40.000Z') / 1000)?.field, undefined, 'expired 20 s ago, within the skew: allowed')
})

// Date.parse rolls a day that does not exist over into the next month: "2026-02-29" (2026 is not
// a leap year) would be read as March 1, and a text naming a date that does not exist signed.
t.test('a date that does not exist is refused', async (t) => {
  const text = message({ issuedAt: '2026-02-29T12:00:00.000Z', expirationTime: '2026-02-29T12:05:00.000Z' })
  t.equal(mismatch(text)?.field, 'issued at')
})

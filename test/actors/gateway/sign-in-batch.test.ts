/**
 * Two parts of the gateway at the module level. issueSignInMessage: the text fetch_nonce issues,
 * which the client's own check (sign-in-check.ts) must accept as it is. BatchAnswer: a batch's
 * answer assembled in request order, entries past the byte budget replaced by their refusal.
 */
import t from 'tap'
import { addressOfPublicKey, checksumAddress, generateKeyPair, parseSignInMessage } from '../../../src/identity/index.js'
import { issueSignInMessage } from '../../../src/actors/gateway/sign-in.js'
import { BatchAnswer } from '../../../src/actors/gateway/batch-answer.js'
import { checkSignInMessage, signInTemplate } from '../../../src/client/sign-in-check.js'

const SIGNER = generateKeyPair().publicKey
const CONTEXT = generateKeyPair().publicKey
const NOW = Date.parse('2026-03-01T12:00:00.250Z')

t.test('issueSignInMessage: the fields, the times and a fresh nonce', async (t) => {
  const site = { domain: 'circle.example:8090', uri: `ws://circle.example:8090/${CONTEXT}` }
  const { message, expiresAt } = issueSignInMessage(site, CONTEXT, { type: 'pubkey', pubkey: SIGNER }, 60_000, NOW)
  t.equal(expiresAt, Math.floor((NOW + 60_000) / 1000))
  const parsed = parseSignInMessage(message)
  t.match(parsed, {
    domain: 'circle.example:8090',
    address: checksumAddress(addressOfPublicKey(SIGNER)),
    context: CONTEXT,
    uri: site.uri,
    issuedAt: '2026-03-01T12:00:00.250Z',
    expirationTime: '2026-03-01T12:01:00.250Z',
  })
  t.match(parsed?.nonce, /^[0-9a-f]{16,}$/)
  const again = issueSignInMessage(site, CONTEXT, { type: 'pubkey', pubkey: SIGNER }, 60_000, NOW)
  t.not(parseSignInMessage(again.message)?.nonce, parsed?.nonce, 'a new nonce each time')
})

t.test('issueSignInMessage: an address claimant is named checksummed', async (t) => {
  const address = addressOfPublicKey(SIGNER)
  const { message } = issueSignInMessage({ domain: 'h', uri: 'ws://h/' }, CONTEXT, { type: 'address', address }, 1_000, NOW)
  t.equal(parseSignInMessage(message)?.address, checksumAddress(address))
})

t.test('issueSignInMessage: a key with no point on the curve is INVALID_PUBLIC_KEY', async (t) => {
  // x = 5: 5^3 + 7 = 132 is not a square mod p, so no point has it.
  const offCurve = `02${'0'.repeat(63)}5`
  t.throws(() => issueSignInMessage({ domain: 'h', uri: 'ws://h/' }, CONTEXT, { type: 'pubkey', pubkey: offCurve }, 1_000, NOW), { code: 'INVALID_PUBLIC_KEY' })
})

t.test('what the node issues, the client accepts as it is', async (t) => {
  for (const url of [`ws://circle.example:8090/${CONTEXT}`, 'wss://circle.example/']) {
    const template = signInTemplate(url, addressOfPublicKey(SIGNER), url.endsWith('/') ? CONTEXT : undefined)
    const { message, expiresAt } = issueSignInMessage({ domain: template.domain, uri: template.uri! }, CONTEXT, { type: 'pubkey', pubkey: SIGNER }, 300_000, NOW)
    t.equal(checkSignInMessage(message, expiresAt, template, NOW, 60_000), undefined, url)
  }
})

function batch(size: number, budget: number) {
  const answers: (string | undefined)[] = []
  const b = new BatchAnswer(size, budget, (i) => `"refused ${i}"`, (text) => answers.push(text))
  return { b, answers }
}

t.test('BatchAnswer: request order whatever the arrival order; done once', async (t) => {
  const { b, answers } = batch(3, 1_000)
  b.set(2, '"c"')
  b.set(0, '"a"')
  t.same(answers, [], 'not done while an entry is unknown')
  b.set(1, '"b"')
  t.same(answers, ['["a","b","c"]'])
  b.set(1, '"again"')
  t.same(answers, ['["a","b","c"]'], 'a second answer of an entry is ignored')
})

t.test('BatchAnswer: notifications get no answer; all notifications, no answer at all', async (t) => {
  const some = batch(3, 1_000)
  some.b.set(0, undefined)
  some.b.set(1, '1')
  some.b.set(2, undefined)
  t.same(some.answers, ['[1]'])
  const none = batch(2, 1_000)
  none.b.set(1, undefined)
  none.b.set(0, undefined)
  t.same(none.answers, [undefined])
  const empty = batch(0, 1_000)
  t.same(empty.answers, [undefined], 'an empty batch is done at once')
})

t.test('BatchAnswer: an entry over the budget is refused in place; later ones are charged after it', async (t) => {
  const { b, answers } = batch(3, 40)
  b.set(0, '"0123456789"')
  b.set(1, '"this one is far too long: 30"')
  b.set(2, '7')
  t.same(answers, ['["0123456789","refused 1",7]'])
  const spent = batch(3, 20)
  spent.b.set(0, '"0123456789"')
  spent.b.set(1, '"this one is far too long: 30"')
  spent.b.set(2, '7')
  t.same(spent.answers, ['["0123456789","refused 1","refused 2"]'], 'the refusal is charged too: it can use up the rest of the budget')
  const bytes = batch(1, 9)
  bytes.b.set(0, '"éé"')
  t.same(bytes.answers, ['["éé"]'], 'counted in UTF-8 bytes: 6 bytes of text, 8 of answer')
  const over = batch(1, 9)
  over.b.set(0, '"ééé"')
  t.same(over.answers, ['["refused 0"]'], '8 bytes of text (5 characters) do not fit')
})

// A separator is charged between parts, not before the first: "[abc]" is 5 bytes, and fits 5.
t.test('BatchAnswer: an answer of exactly the budget fits', async (t) => {
  const { b, answers } = batch(1, 5)
  b.set(0, 'abc')
  t.same(answers, ['[abc]'])
  const two = batch(2, 8)
  two.b.set(0, 'abc')
  two.b.set(1, 'de')
  t.same(two.answers, ['[abc,de]'], 'two parts and their separator: 8 bytes in 8')
  const over = batch(2, 7)
  over.b.set(0, 'abc')
  over.b.set(1, 'de')
  t.same(over.answers, ['[abc,"refused 1"]'], 'one byte short: the second part is refused')
})

import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { DEFAULT_POLICY } from '../../src/policy/index.js'
import { decodeFeedMessage, encodeFeedMessage, macOf, type FeedMessage } from '../../src/queue/index.js'

// The messages of live updates across nodes: MAC'd with the cluster secret (domain `feed`) over
// their exact JSON text, then checked field by field. Anything else is QUEUE_MESSAGE_INVALID.

const SECRET = 'a-cluster-secret-of-some-length'
const context = generateKeyPair().publicKey
const caller = generateKeyPair().publicKey
const NODE = '0123456789abcdef'
const EPOCH = 'fedcba9876543210'

/** A message signed with the cluster secret over exactly `json` (any shape: what a node with the secret could send). */
function signed(json: string, secret = SECRET): string {
  return `${macOf(secret, 'feed', [json])} ${json}`
}

function refusal(text: unknown): string | undefined {
  try {
    decodeFeedMessage(SECRET, text)
  } catch (error) {
    const { code, details } = error as { code: string; details: { why: string } }
    return `${code}: ${details.why}`
  }
  return undefined
}

t.test('every kind of message goes through whole', async (t) => {
  const messages: FeedMessage[] = [
    { k: 'w', c: context, g: NODE, r: 'aaaaaaaaaaaaaaaa', a: [EPOCH, 7] },
    { k: 'w', c: context, g: NODE, r: null, a: null },
    { k: 'u', c: context, g: NODE },
    { k: 'o', g: NODE },
    {
      k: 'n',
      c: context,
      e: EPOCH,
      l: [
        [8, { type: 'changed', name: 'posts/1', op: 'save', value: '{"text":"hi \\ud800"}' }],
        [9, { type: 'changed', name: 'posts/big', op: 'save', truncated: true }],
        [10, { type: 'changed', name: 'posts/1', op: 'delete' }],
        [11, { type: 'event', topic: 'typing', value: 'true', caller }],
        [12, { type: 'event', topic: 'typing', value: 'false', caller: '' }],
      ],
    },
    { k: 's', c: context, e: EPOCH, q: 12, p: DEFAULT_POLICY, r: null, g: false, x: [[12, { type: 'changed', name: 'a', op: 'delete' }]] },
    { k: 's', c: context, e: EPOCH, q: 12, p: { ...DEFAULT_POLICY, subscribe: [caller] }, r: 'bbbbbbbbbbbbbbbb', g: true, x: null },
  ]
  for (const message of messages) t.same(decodeFeedMessage(SECRET, encodeFeedMessage(SECRET, message)), message, message.k)
})

t.test('the MAC: another secret, another domain, a changed byte, none at all', async (t) => {
  const text = encodeFeedMessage(SECRET, { k: 'o', g: NODE })
  t.equal(refusal(encodeFeedMessage('another secret entirely', { k: 'o', g: NODE })), 'QUEUE_MESSAGE_INVALID: the MAC does not verify')
  const json = text.slice(text.indexOf(' ') + 1)
  t.equal(refusal(`${macOf(SECRET, 'task', [json])} ${json}`), 'QUEUE_MESSAGE_INVALID: the MAC does not verify', "a MAC made for a task's domain")
  t.equal(refusal(text.replace(NODE, '0123456789abcdee')), 'QUEUE_MESSAGE_INVALID: the MAC does not verify', 'a changed field')
  t.equal(refusal(json), 'QUEUE_MESSAGE_INVALID: no MAC', 'no MAC')
  t.equal(refusal(`AAAA ${json}`), 'QUEUE_MESSAGE_INVALID: the MAC does not verify', 'a made-up MAC')
  t.equal(refusal('nospace'), 'QUEUE_MESSAGE_INVALID: no MAC')
  t.equal(refusal(42), 'QUEUE_MESSAGE_INVALID: not text')
  t.equal(refusal(`x ${'a'.repeat(4 * 1024 * 1024)}`), 'QUEUE_MESSAGE_INVALID: over the size cap', 'over 4 MiB: refused before the MAC is computed')
})

t.test('a MAC that verifies is not enough: every field is checked', async (t) => {
  const notice = (n: unknown) => signed(JSON.stringify({ k: 'n', c: context, e: EPOCH, l: [[1, n]] }))
  const cases: [string, string][] = [
    [signed('not json'), 'not JSON'],
    [signed('[1]'), 'not an object'],
    [signed('{"k":"z"}'), 'unknown kind'],
    [signed(JSON.stringify({ k: 'o', g: 'NODE' })), '"g" is not a node id'],
    [signed(JSON.stringify({ k: 'u', c: context.toUpperCase(), g: NODE })), '"c" is not a context key'],
    [signed(JSON.stringify({ k: 'w', c: context, g: NODE, r: 'short', a: null })), '"r" is not a request id'],
    [signed(JSON.stringify({ k: 'w', c: context, g: NODE, r: null, a: [EPOCH, -1] })), '"a" is not a position'],
    [signed(JSON.stringify({ k: 'n', c: context, e: 'x', l: [] })), '"e" is not an epoch'],
    [signed(JSON.stringify({ k: 'n', c: context, e: EPOCH, l: [[1, { type: 'changed', name: 'a', op: 'delete' }], [3, { type: 'changed', name: 'a', op: 'delete' }]] })), 'notices are not consecutive'],
    [signed(JSON.stringify({ k: 'n', c: context, e: EPOCH, l: [[0, { type: 'changed', name: 'a', op: 'delete' }]] })), 'a notice is not [seq, notice]'],
    [notice({ type: 'changed', name: 'a', op: 'patch' }), 'a change needs a name and an op'],
    [notice({ type: 'changed', name: 'a', op: 'save', value: { not: 'text' } }), "a change's value is not JSON text"],
    [notice({ type: 'event', topic: 't', value: '1', caller: 'someone' }), "an event's caller is not a key"],
    [notice({ type: 'other' }), 'a notice of unknown type'],
    [signed(JSON.stringify({ k: 's', c: context, e: EPOCH, q: 1, p: { run: 'everyone' }, r: null, g: false, x: null })), '"p" is not a policy (p.run must be "anonymous", "authenticated", "owner" or an array of public keys)'],
    [signed(JSON.stringify({ k: 's', c: context, e: EPOCH, q: 1.5, p: {}, r: null, g: false, x: null })), '"q" is not a seq'],
    [signed(JSON.stringify({ k: 's', c: context, e: EPOCH, q: 1, p: {}, r: null, g: 'no', x: null })), '"g" is not a boolean'],
  ]
  for (const [text, why] of cases) t.equal(refusal(text), `QUEUE_MESSAGE_INVALID: ${why}`, why)
})

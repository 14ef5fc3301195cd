/**
 * parseParams for every method: the canonical call it makes of good params, and the coded error
 * (with the field it names) for each kind of bad input. errorResponse: the JSON-RPC error object.
 */
import t, { type Test } from 'tap'
import { generateKeyPair, addressOfPublicKey } from '../../src/identity/index.js'
import { METHOD_NAMES, errorResponse, isMethodName, parseParams, scriptSizeError } from '../../src/protocol/index.js'
import { circlesError } from '../../src/errors/index.js'

const LIMITS = { maxScriptBytes: 64 }
const KEY = generateKeyPair().publicKey
const ADDRESS = addressOfPublicKey(KEY)
const SIGNATURE = `0x${'ab'.repeat(65)}`

function refused(t: Test, method: Parameters<typeof parseParams>[0], params: unknown, code: string, field: string | undefined, why: string) {
  const r = parseParams(method, params, LIMITS)
  t.equal(r.ok, false, why)
  if (!r.ok) {
    t.equal(r.error.code, code, `${why}: ${code}`)
    t.equal(r.error.details?.['field'], field, `${why}: field ${field}`)
  }
}

t.test('METHOD_NAMES and isMethodName', async (t) => {
  t.same(METHOD_NAMES, ['fetch_nonce', 'authenticate', 'play', 'subscribe', 'unsubscribe'])
  for (const m of METHOD_NAMES) t.equal(isMethodName(m), true, m)
  for (const m of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'Play', '']) t.equal(isMethodName(m), false, JSON.stringify(m))
})

t.test('fetch_nonce: exactly one of pubkey and address, canonicalised', async (t) => {
  const upper = `0X${KEY.toUpperCase()}`
  t.same(parseParams('fetch_nonce', { pubkey: upper }, LIMITS), { ok: true, call: { method: 'fetch_nonce', params: { pubkey: KEY } } })
  t.same(parseParams('fetch_nonce', { address: ADDRESS.toUpperCase().replace('0X', '0x') }, LIMITS), { ok: true, call: { method: 'fetch_nonce', params: { address: ADDRESS } } })
  refused(t, 'fetch_nonce', {}, 'INVALID_PARAMS', 'pubkey', 'neither')
  refused(t, 'fetch_nonce', { pubkey: KEY, address: ADDRESS }, 'INVALID_PARAMS', 'address', 'both')
  refused(t, 'fetch_nonce', { pubkey: 7 }, 'INVALID_PARAMS', 'pubkey', 'pubkey not a string')
  refused(t, 'fetch_nonce', { pubkey: null }, 'INVALID_PARAMS', 'pubkey', 'pubkey null')
  refused(t, 'fetch_nonce', { pubkey: '02' + 'f'.repeat(64) }, 'INVALID_PUBLIC_KEY', 'pubkey', 'x past the field prime')
  refused(t, 'fetch_nonce', { pubkey: 'zz' }, 'INVALID_PUBLIC_KEY', 'pubkey', 'not hex')
  refused(t, 'fetch_nonce', { address: '0x1234' }, 'INVALID_PARAMS', 'address', 'short address')
  refused(t, 'fetch_nonce', { address: ADDRESS.slice(2) }, 'INVALID_PARAMS', 'address', 'address without 0x')
  refused(t, 'fetch_nonce', { pubkey: KEY, extra: 1 }, 'INVALID_PARAMS', 'extra', 'an unknown param')
  for (const p of [null, undefined, [KEY], KEY, 3]) refused(t, 'fetch_nonce', p, 'INVALID_PARAMS', undefined, `params ${JSON.stringify(p)}`)
})

t.test('authenticate: the claim and a 65-byte hex signature', async (t) => {
  t.same(parseParams('authenticate', { pubkey: KEY, signature: SIGNATURE }, LIMITS), { ok: true, call: { method: 'authenticate', params: { pubkey: KEY, signature: SIGNATURE } } })
  t.same(parseParams('authenticate', { address: ADDRESS, signature: SIGNATURE.slice(2) }, LIMITS), {
    ok: true,
    call: { method: 'authenticate', params: { address: ADDRESS, signature: SIGNATURE.slice(2) } },
  })
  refused(t, 'authenticate', { pubkey: KEY }, 'INVALID_PARAMS', 'signature', 'no signature')
  refused(t, 'authenticate', { pubkey: KEY, signature: SIGNATURE.slice(0, -2) }, 'INVALID_PARAMS', 'signature', '64 bytes')
  refused(t, 'authenticate', { pubkey: KEY, signature: `0x${'zz'.repeat(65)}` }, 'INVALID_PARAMS', 'signature', 'not hex')
  refused(t, 'authenticate', { signature: SIGNATURE }, 'INVALID_PARAMS', 'pubkey', 'no claim')
  refused(t, 'authenticate', { pubkey: KEY, signature: SIGNATURE, nonce: 'x' }, 'INVALID_PARAMS', 'nonce', 'an unknown param')
})

t.test('play: a script within the size limit and an optional timeout', async (t) => {
  t.same(parseParams('play', { script: 'return 1' }, LIMITS), { ok: true, call: { method: 'play', params: { script: 'return 1' } } })
  t.same(parseParams('play', { script: '', timeout_ms: 2_147_483_647 }, LIMITS), { ok: true, call: { method: 'play', params: { script: '', timeout_ms: 2_147_483_647 } } })
  t.equal(parseParams('play', { script: 'x'.repeat(64) }, LIMITS).ok, true, 'exactly the limit')
  refused(t, 'play', { script: 'x'.repeat(65) }, 'SCRIPT_TOO_LARGE', undefined, 'one byte over')
  refused(t, 'play', { script: 'é'.repeat(33) }, 'SCRIPT_TOO_LARGE', undefined, '33 characters, 66 bytes')
  refused(t, 'play', {}, 'INVALID_PARAMS', 'script', 'no script')
  refused(t, 'play', { script: 1 }, 'INVALID_PARAMS', 'script', 'a number')
  for (const timeout of [0, -1, 1.5, '100', 2_147_483_648, null]) refused(t, 'play', { script: '', timeout_ms: timeout }, 'INVALID_PARAMS', 'timeout_ms', `timeout_ms ${timeout}`)
  refused(t, 'play', { script: '', context: KEY }, 'INVALID_PARAMS', 'context', 'an unknown param')
})

t.test('subscribe: optional prefix, topics and resume position', async (t) => {
  t.same(parseParams('subscribe', undefined, LIMITS), { ok: true, call: { method: 'subscribe', params: {} } }, 'no params')
  t.same(parseParams('subscribe', { prefix: 'docs/', topics: ['a', ''], after: { epoch: '0a', seq: 0 } }, LIMITS), {
    ok: true,
    call: { method: 'subscribe', params: { prefix: 'docs/', topics: ['a', ''], after: { epoch: '0a', seq: 0 } } },
  })
  t.equal(parseParams('subscribe', { prefix: 'x'.repeat(200) }, LIMITS).ok, true, '200 bytes')
  refused(t, 'subscribe', { prefix: 'x'.repeat(201) }, 'INVALID_PARAMS', 'prefix', '201 bytes')
  refused(t, 'subscribe', { prefix: 'é'.repeat(101) }, 'INVALID_PARAMS', 'prefix', '101 characters, 202 bytes')
  refused(t, 'subscribe', { prefix: 'a\ud800' }, 'INVALID_PARAMS', 'prefix', 'a lone surrogate')
  refused(t, 'subscribe', { prefix: 3 }, 'INVALID_PARAMS', 'prefix', 'a number')
  refused(t, 'subscribe', { topics: [] }, 'INVALID_PARAMS', 'topics', 'no topics')
  refused(t, 'subscribe', { topics: 'a' }, 'INVALID_PARAMS', 'topics', 'not an array')
  refused(t, 'subscribe', { topics: Array.from({ length: 17 }, (_, i) => `t${i}`) }, 'INVALID_PARAMS', 'topics', '17 topics')
  t.equal(parseParams('subscribe', { topics: Array.from({ length: 16 }, (_, i) => `t${i}`) }, LIMITS).ok, true, '16 topics')
  refused(t, 'subscribe', { topics: ['a', 5] }, 'INVALID_PARAMS', 'topics[1]', 'a topic that is not a string')
  refused(t, 'subscribe', { after: [1] }, 'INVALID_PARAMS', 'after', 'after an array')
  refused(t, 'subscribe', { after: { epoch: '0a', seq: 1, extra: 1 } }, 'INVALID_PARAMS', 'after', 'after with an extra key')
  refused(t, 'subscribe', { after: { epoch: 'XYZ', seq: 1 } }, 'INVALID_PARAMS', 'after.epoch', 'an epoch not hex')
  refused(t, 'subscribe', { after: { epoch: 'A0', seq: 1 } }, 'INVALID_PARAMS', 'after.epoch', 'an upper-case epoch')
  refused(t, 'subscribe', { after: { epoch: 'a'.repeat(65), seq: 1 } }, 'INVALID_PARAMS', 'after.epoch', 'an epoch too long')
  for (const seq of [-1, 1.5, 2 ** 53, '1']) refused(t, 'subscribe', { after: { epoch: 'a', seq } }, 'INVALID_PARAMS', 'after.seq', `seq ${seq}`)
  refused(t, 'subscribe', { since: 1 }, 'INVALID_PARAMS', 'since', 'an unknown param')
  refused(t, 'subscribe', [], 'INVALID_PARAMS', undefined, 'params an array')
})

t.test('unsubscribe: the id subscribe answered', async (t) => {
  t.same(parseParams('unsubscribe', { subscription: 's12' }, LIMITS), { ok: true, call: { method: 'unsubscribe', params: { subscription: 's12' } } })
  t.equal(parseParams('unsubscribe', { subscription: 'x'.repeat(32) }, LIMITS).ok, true)
  for (const s of ['', 'x'.repeat(33), 12, null]) refused(t, 'unsubscribe', { subscription: s }, 'INVALID_PARAMS', 'subscription', `subscription ${JSON.stringify(s)}`)
  refused(t, 'unsubscribe', undefined, 'INVALID_PARAMS', undefined, 'no params')
})

t.test('scriptSizeError: counts UTF-8 bytes', async (t) => {
  t.equal(scriptSizeError('abc', 3, 'call'), undefined)
  t.equal(scriptSizeError('€', 3, 'call'), undefined, 'three bytes')
  const e = scriptSizeError('€€', 5, 'call')
  t.equal(e?.code, 'SCRIPT_TOO_LARGE')
  t.equal(e?.message, 'call: script is over 5 bytes')
  t.same(e?.details, { limit: 5 })
})

t.test('errorResponse: a JSON-RPC 2.0 error with data.code and the details', async (t) => {
  t.same(errorResponse(7, circlesError('INVALID_PARAMS', 'play: "script" must be a string', { field: 'script' })), {
    jsonrpc: '2.0',
    id: 7,
    error: { code: -32602, message: 'play: "script" must be a string', data: { field: 'script', code: 'INVALID_PARAMS' } },
  })
  t.same(errorResponse(null, circlesError('SCRIPT_TOO_LARGE')).error, { code: -32014, message: 'The script is over the size limit', data: { code: 'SCRIPT_TOO_LARGE' } })
  t.same(errorResponse('a', circlesError('ADDRESS_IN_USE')).error.code, -32603, 'an error with no RPC code answers as INTERNAL_ERROR')
})

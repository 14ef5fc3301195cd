import t from 'tap'
import { Verifier } from '../../src/verifier/index.js'
import { createNonce, generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'

t.test('Verifier.verify(message, signature, pubkey)', async (t) => {
  const verifier = new Verifier()
  t.teardown(() => verifier.close())
  const pair = generateKeyPair()
  const nonce = createNonce()
  const good = signPersonalMessage(nonce, pair.secretKey)
  t.same(await verifier.verify(nonce, good, pair.publicKey), { ok: true, publicKey: pair.publicKey })
  t.same(await verifier.verify(nonce, good, generateKeyPair().publicKey), { ok: false, reason: 'mismatch' })
  t.same(await verifier.verify(nonce, 'junk', pair.publicKey), { ok: false, reason: 'malformed' })
  const many = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(nonce, good, pair.publicKey)))
  t.ok(many.every((r) => r.ok), 'concurrent checks all answer')
  t.equal(verifier.queued, 0)
})

t.test('Verifier options', async (t) => {
  t.throws(() => new Verifier({ threads: 0 }), { code: 'INVALID_OPTION', message: 'options.threads must be a positive integer' })
  t.throws(() => new Verifier({ maxPending: 1.5 }), { code: 'INVALID_OPTION', message: 'options.maxPending must be a positive integer' })
})

t.test('Verifier answers OVERLOADED past its queue bound', async (t) => {
  const verifier = new Verifier({ maxPending: 2 })
  t.teardown(() => verifier.close())
  const pair = generateKeyPair()
  const sig = signPersonalMessage('n', pair.secretKey)
  const first = verifier.verify('n', sig, pair.publicKey)
  const second = verifier.verify('n', sig, pair.publicKey)
  await t.rejects(verifier.verify('n', sig, pair.publicKey), { code: 'OVERLOADED' })
  t.ok((await first).ok && (await second).ok)
})

import t from 'tap'
import { Verifier } from '../../src/verifier/index.js'
import { createNonce, generateKeyPair, signPersonalMessage, type Claimant } from '../../src/identity/index.js'

const key = (pubkey: string): Claimant => ({ type: 'pubkey', pubkey })

t.test('Verifier.verify(message, signature, claimant)', async (t) => {
  const verifier = new Verifier()
  t.teardown(() => verifier.close())
  const pair = generateKeyPair()
  const nonce = createNonce()
  const good = signPersonalMessage(nonce, pair.secretKey)
  t.same(await verifier.verify(nonce, good, key(pair.publicKey)), { ok: true, publicKey: pair.publicKey })
  t.same(await verifier.verify(nonce, good, key(generateKeyPair().publicKey)), { ok: false, reason: 'mismatch' })
  t.same(await verifier.verify(nonce, 'junk', key(pair.publicKey)), { ok: false, reason: 'malformed' })
  const many = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(nonce, good, key(pair.publicKey))))
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
  const first = verifier.verify('n', sig, key(pair.publicKey))
  const second = verifier.verify('n', sig, key(pair.publicKey))
  await t.rejects(verifier.verify('n', sig, key(pair.publicKey)), { code: 'OVERLOADED' })
  t.ok((await first).ok && (await second).ok)
})

t.test('Verifier.verify with an address claim recovers the key behind the address', async (t) => {
  const { Wallet } = await import('ethers')
  const verifier = new Verifier()
  t.teardown(() => verifier.close())
  const pair = generateKeyPair()
  // ethers derives the address on its own: an independent check of keccak256(x‖y)[12..].
  const wallet = new Wallet(`0x${pair.secretKey}`)
  const nonce = createNonce()
  const signature = await wallet.signMessage(nonce)
  const address: Claimant = { type: 'address', address: wallet.address.toLowerCase() }
  t.same(await verifier.verify(nonce, signature, address), { ok: true, publicKey: pair.publicKey })
  const other: Claimant = { type: 'address', address: Wallet.createRandom().address.toLowerCase() }
  t.same(await verifier.verify(nonce, signature, other), { ok: false, reason: 'mismatch' })
  t.same(await verifier.verify('another nonce', signature, address), { ok: false, reason: 'mismatch' })
})

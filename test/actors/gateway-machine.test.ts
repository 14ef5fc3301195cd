import t from 'tap'
import { createActor, getInitialSnapshot, getNextSnapshot, SimulatedClock, waitFor, type Actor } from 'xstate'
import { gatewayMachine, type VerifyInput, type VerifyOutput } from '../../src/actors/gateway/index.js'
import type { Claimant } from '../../src/identity/index.js'

const KEY_A = '02' + 'a'.repeat(64)
const A: Claimant = { type: 'pubkey', pubkey: KEY_A }
const B: Claimant = { type: 'pubkey', pubkey: '03' + 'b'.repeat(64) }
const ADDRESS: Claimant = { type: 'address', address: '0x' + 'c'.repeat(40) }
const input = { nonceTtlMs: 1000, verify: async (): Promise<VerifyOutput> => ({ ok: false, reason: 'mismatch' }) }

t.test('gatewayMachine transitions', async (t) => {
  const s0 = getInitialSnapshot(gatewayMachine, input)

  t.test('starts connected', async (t) => {
    t.same(s0.value, { open: 'connected' })
    t.equal(s0.context.caller, null)
  })

  t.test('NONCE_ISSUED remembers the nonce for that key', async (t) => {
    const s1 = getNextSnapshot(gatewayMachine, s0, { type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    t.same(s1.value, { open: 'nonceIssued' })
    t.same(s1.context.nonce, { value: 'n1', claimant: A })
    const s2 = getNextSnapshot(gatewayMachine, s1, { type: 'NONCE_ISSUED', claimant: B, nonce: 'n2' })
    t.same(s2.context.nonce, { value: 'n2', claimant: B }, 'a newer nonce replaces the older one')
  })

  t.test('AUTHENTICATE for the nonce key starts verifying and consumes the nonce', async (t) => {
    const s1 = getNextSnapshot(gatewayMachine, s0, { type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    const s2 = getNextSnapshot(gatewayMachine, s1, { type: 'AUTHENTICATE', requestId: 7, claimant: A, signature: 'sig' })
    t.same(s2.value, { open: 'verifying' })
    t.equal(s2.context.nonce, null)
    t.same(s2.context.verifying, { requestId: 7, claimant: A, signature: 'sig', nonce: 'n1' })
  })

  t.test('AUTHENTICATE without a nonce, or for another key, closes with NONCE_UNKNOWN (1008)', async (t) => {
    const direct = getNextSnapshot(gatewayMachine, s0, { type: 'AUTHENTICATE', requestId: 1, claimant: A, signature: 's' })
    t.equal(direct.value, 'closing')
    t.same(direct.context.close, { code: 'NONCE_UNKNOWN', wsCode: 1008, requestId: 1 })
    const s1 = getNextSnapshot(gatewayMachine, s0, { type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    const other = getNextSnapshot(gatewayMachine, s1, { type: 'AUTHENTICATE', requestId: 2, claimant: B, signature: 's' })
    t.same(other.context.close, { code: 'NONCE_UNKNOWN', wsCode: 1008, requestId: 2 })
    t.equal(other.context.nonce, null, 'the failed attempt consumed the nonce')
  })

  t.test('IDLE and SHUTDOWN close with 1001; SOCKET_CLOSED ends the machine', async (t) => {
    const idle = getNextSnapshot(gatewayMachine, s0, { type: 'IDLE' })
    t.same(idle.context.close, { code: 'IDLE_TIMEOUT', wsCode: 1001 })
    const down = getNextSnapshot(gatewayMachine, s0, { type: 'SHUTDOWN' })
    t.same(down.context.close, { code: 'SHUTTING_DOWN', wsCode: 1001 })
    const closed = getNextSnapshot(gatewayMachine, idle, { type: 'SOCKET_CLOSED' })
    t.equal(closed.value, 'closed')
    t.equal(closed.status, 'done')
    t.equal(getNextSnapshot(gatewayMachine, s0, { type: 'SOCKET_CLOSED' }).status, 'done')
  })

  t.test('CUT closes with its code and 1008, from any open state', async (t) => {
    const issued = getNextSnapshot(gatewayMachine, s0, { type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    for (const from of [s0, issued]) {
      const cut = getNextSnapshot(gatewayMachine, from, { type: 'CUT', code: 'SLOW_CONSUMER' })
      t.equal(cut.value, 'closing')
      t.same(cut.context.close, { code: 'SLOW_CONSUMER', wsCode: 1008 })
    }
  })
})

t.test('gatewayMachine as an actor', async (t) => {
  const run = (verify: (input: VerifyInput) => Promise<VerifyOutput>, nonceTtlMs = 1000, clock?: SimulatedClock) => {
    const actor = createActor(gatewayMachine, { input: { nonceTtlMs, verify }, ...(clock === undefined ? {} : { clock }) })
    actor.start()
    return actor
  }
  /** Resolves once the verification the actor invoked has answered (it leaves `verifying`). */
  const verified = (actor: Actor<typeof gatewayMachine>) => waitFor(actor, (snapshot) => !snapshot.matches({ open: 'verifying' }))

  t.test('a valid signature authenticates and records the caller', async (t) => {
    let seen: VerifyInput | undefined
    const actor = run(async (input) => {
      seen = input
      return { ok: true, publicKey: KEY_A }
    })
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    actor.send({ type: 'AUTHENTICATE', requestId: 3, claimant: A, signature: 'sig' })
    await verified(actor)
    t.same(seen, { nonce: 'n1', claimant: A, signature: 'sig' }, 'verifies the issued nonce')
    t.same(actor.getSnapshot().value, { open: 'authenticated' })
    t.equal(actor.getSnapshot().context.caller, KEY_A)
    t.equal(actor.getSnapshot().context.answered, 3)
  })

  t.test('an address claim authenticates as the key the signature recovered', async (t) => {
    const actor = run(async () => ({ ok: true, publicKey: KEY_A }))
    actor.send({ type: 'NONCE_ISSUED', claimant: ADDRESS, nonce: 'n1' })
    actor.send({ type: 'AUTHENTICATE', requestId: 3, claimant: { type: 'pubkey', pubkey: KEY_A }, signature: 'sig' })
    t.same(actor.getSnapshot().context.close, { code: 'NONCE_UNKNOWN', wsCode: 1008, requestId: 3 }, 'the nonce was for the address, not the key')
    const second = run(async () => ({ ok: true, publicKey: KEY_A }))
    second.send({ type: 'NONCE_ISSUED', claimant: ADDRESS, nonce: 'n1' })
    second.send({ type: 'AUTHENTICATE', requestId: 4, claimant: { type: 'address', address: '0x' + 'c'.repeat(40) }, signature: 'sig' })
    await verified(second)
    t.same(second.getSnapshot().value, { open: 'authenticated' })
    t.equal(second.getSnapshot().context.caller, KEY_A)
  })

  t.test('an invalid signature closes with INVALID_CREDENTIALS (1008)', async (t) => {
    const actor = run(async () => ({ ok: false, reason: 'mismatch' }))
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    actor.send({ type: 'AUTHENTICATE', requestId: 4, claimant: A, signature: 'sig' })
    await verified(actor)
    t.equal(actor.getSnapshot().value, 'closing')
    t.same(actor.getSnapshot().context.close, { code: 'INVALID_CREDENTIALS', wsCode: 1008, requestId: 4 })
  })

  t.test('an overloaded verifier closes with OVERLOADED (1013, try again later)', async (t) => {
    const { circlesError } = await import('../../src/errors/index.js')
    const actor = run(async () => {
      throw circlesError('OVERLOADED')
    })
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    actor.send({ type: 'AUTHENTICATE', requestId: 5, claimant: A, signature: 'sig' })
    await verified(actor)
    t.same(actor.getSnapshot().context.close, { code: 'OVERLOADED', wsCode: 1013, requestId: 5 })
  })

  t.test('the nonce expires after its TTL: AUTHENTICATE then closes with NONCE_EXPIRED', async (t) => {
    const clock = new SimulatedClock()
    const actor = run(async (input) => ({ ok: true, publicKey: KEY_A }), 30, clock)
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    clock.increment(30)
    t.same(actor.getSnapshot().value, { open: 'nonceExpired' })
    actor.send({ type: 'AUTHENTICATE', requestId: 6, claimant: A, signature: 'sig' })
    t.same(actor.getSnapshot().context.close, { code: 'NONCE_EXPIRED', wsCode: 1008, requestId: 6 })
  })

  t.test('a fresh nonce after expiry is usable again', async (t) => {
    const clock = new SimulatedClock()
    const actor = run(async (input) => ({ ok: true, publicKey: KEY_A }), 30, clock)
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n1' })
    clock.increment(30)
    actor.send({ type: 'NONCE_ISSUED', claimant: A, nonce: 'n2' })
    actor.send({ type: 'AUTHENTICATE', requestId: 8, claimant: A, signature: 'sig' })
    await verified(actor)
    t.same(actor.getSnapshot().value, { open: 'authenticated' })
  })
})

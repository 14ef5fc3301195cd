/**
 * AddressSubscriptions: the per-address count of subscriptions across a node's sockets, the
 * TOO_MANY_SUBSCRIPTIONS refusal at `max`, and release.
 */
import t from 'tap'
import { AddressSubscriptions } from '../../src/live/address-subscriptions.js'

t.test('up to max per address; the refusal names the limit', async (t) => {
  const subs = new AddressSubscriptions(2)
  t.equal(subs.max, 2)
  t.equal(subs.acquire('a'), undefined)
  t.equal(subs.acquire('a'), undefined)
  const refused = subs.acquire('a')
  t.equal(refused?.code, 'TOO_MANY_SUBSCRIPTIONS')
  t.equal(refused?.message, 'This address holds 2 subscriptions already')
  t.same(refused?.details, { limit: 'address', max: 2 })
  t.equal(subs.acquire('b'), undefined, 'another address counts on its own')
  t.equal(subs.acquire('a')?.code, 'TOO_MANY_SUBSCRIPTIONS', 'a refusal does not count one')
  subs.release('a')
  t.equal(subs.acquire('a'), undefined, 'a release frees one')
  t.equal(subs.acquire('a')?.code, 'TOO_MANY_SUBSCRIPTIONS')
})

t.test('releasing more than was acquired banks nothing', async (t) => {
  const subs = new AddressSubscriptions(1)
  subs.release('a')
  subs.release('a')
  t.equal(subs.acquire('a'), undefined)
  t.equal(subs.acquire('a')?.code, 'TOO_MANY_SUBSCRIPTIONS')
  subs.release('a')
  subs.release('a')
  t.equal(subs.acquire('a'), undefined)
  t.equal(subs.acquire('a')?.code, 'TOO_MANY_SUBSCRIPTIONS')
})

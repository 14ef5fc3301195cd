/**
 * SocketSubscription: notifications held (and their bytes charged) until the subscription's
 * answer is out, then sent in order; nothing after it is discarded.
 */
import t from 'tap'
import { SocketSubscription, type SubscriptionSink } from '../../../src/actors/gateway/socket-subscription.js'

function sink() {
  const events: string[] = []
  let held = 0
  const s: SubscriptionSink = {
    notify: (text) => void events.push(`notify ${text}`),
    hold: (delta) => {
      held += delta
      events.push(`hold ${delta}`)
    },
    ended: (sub) => void events.push(`ended ${sub.id}`),
  }
  return Object.assign(s, { events, held: () => held })
}

t.test('held until activated, charged in UTF-8 bytes, then sent in order', async (t) => {
  const s = sink()
  const sub = new SocketSubscription('s1', 'caller', { prefix: 'docs/' }, s)
  t.same([sub.id, sub.caller, sub.filter], ['s1', 'caller', { prefix: 'docs/' }])
  sub.deliver('"a"')
  sub.deliver('"é"')
  t.same(s.events, ['hold 3', 'hold 4'], 'nothing sent before the answer')
  sub.activate()
  t.same(s.events.slice(2), ['hold -7', 'notify "a"', 'notify "é"'], 'released, then sent in order')
  t.equal(s.held(), 0)
  sub.deliver('"b"')
  t.same(s.events.slice(5), ['notify "b"'], 'after the answer: sent at once')
  sub.activate()
  t.same(s.events.length, 6, 'a second activate does nothing')
})

t.test('discard: held bytes released, the context detached, nothing more sent', async (t) => {
  const s = sink()
  const sub = new SocketSubscription('s2', '', {}, s)
  let cancelled = 0
  sub.cancel = () => cancelled++
  sub.deliver('12345')
  sub.discard()
  t.equal(cancelled, 1)
  t.equal(s.held(), 0)
  sub.deliver('"late"')
  sub.activate()
  sub.ended()
  t.same(s.events, ['hold 5', 'hold -5'], 'after discard the sink hears nothing')
})

t.test('ended reports the subscription to its sink; discard after activate releases nothing', async (t) => {
  const s = sink()
  const sub = new SocketSubscription('s3', '', {}, s)
  sub.activate()
  sub.ended()
  t.same(s.events, ['hold 0', 'ended s3'])
  sub.discard()
  t.same(s.events, ['hold 0', 'ended s3'])
})

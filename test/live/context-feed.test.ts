import t from 'tap'
import { setImmediate as turn } from 'node:timers/promises'
import { ContextFeed, type Notice, type Subscriber } from '../../src/live/index.js'

const LOG = { maxEntries: 100, maxAgeMs: 60_000, maxBytes: 1 << 20 }

/** A subscriber that keeps what it is sent, parsed. */
function subscriber(id: string, filter: Subscriber['filter'] = {}) {
  const got: any[] = []
  let ended = false
  const sub: Subscriber = { id, caller: '', filter, deliver: (text) => got.push(JSON.parse(text)), ended: () => (ended = true) }
  return { sub, got, ended: () => ended }
}

const change = (name: string): Notice => ({ type: 'changed', name, op: 'delete' })

t.test('a fan-out to many subscribers goes in slices, in order for each, to those still there', async (t) => {
  const feed = new ContextFeed({ log: LOG, maxSubscribers: 10_000 })
  const subs = Array.from({ length: 600 }, (_, i) => subscriber(`s${i}`))
  for (const { sub } of subs) feed.subscribe(sub)
  feed.publish([change('a'), change('b')])
  t.equal(subs.reduce((n, s) => n + s.got.length, 0), 0, 'nothing before the next turn: the writer is answered first')
  await turn()
  t.equal(subs.reduce((n, s) => n + s.got.length, 0), 256, 'one slice per turn')
  feed.unsubscribe(subs[599]!.sub)
  const late = subscriber('late')
  feed.subscribe(late.sub)
  while (subs.slice(0, 599).some((s) => s.got.length < 2)) await turn()
  await turn()
  for (const s of subs.slice(0, 599)) t.same(s.got.map((m) => [m.params.seq, m.params.name]), [[1, 'a'], [2, 'b']], s.sub.id)
  t.same(subs[599]!.got, [], 'unsubscribed before its turn came: nothing')
  t.same(late.got, [], 'subscribed after those notices: they are part of what it reads, not sent')
  feed.publish([change('c')])
  while (late.got.length === 0) await turn()
  t.same(late.got.map((m) => m.params.seq), [3])
})

t.test('restart ends every subscription with RESYNC_REQUIRED and drops what was not sent', async (t) => {
  const feed = new ContextFeed({ log: LOG, maxSubscribers: 10 })
  const a = subscriber('a', { prefix: 'x' })
  const before = feed.subscribe(a.sub)
  feed.publish([change('x1')])
  feed.restart()
  await turn()
  t.equal(a.got.length, 1)
  t.match(a.got[0], { method: 'subscription_ended', params: { subscription: 'a', code: 'RESYNC_REQUIRED', seq: 0 } })
  t.not(a.got[0].params.epoch, before.epoch)
  t.equal(a.ended(), true)
  t.equal(feed.size, 0)
  t.throws(() => feed.subscribe(subscriber('b').sub, before), { code: 'RESYNC_REQUIRED' }, 'the old epoch cannot be resumed')
})

/**
 * RestartIntensity on a stepped clock: how many restarts fit in the sliding period, and when the
 * oldest ones leave it. The boundary (a restart exactly `periodMs` old) is pinned.
 */
import t from 'tap'
import { RestartIntensity } from '../../src/supervisor/index.js'

function clock(start = 10_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

t.test('up to `intensity` restarts within the period are allowed; the next is not', async (t) => {
  const time = clock()
  const r = new RestartIntensity(3, 1_000, time.now)
  t.equal(r.record(), true, '1')
  time.advance(100)
  t.equal(r.record(), true, '2')
  time.advance(100)
  t.equal(r.record(), true, '3')
  time.advance(100)
  t.equal(r.record(), false, 'the fourth within 1 s')
})

t.test('restarts leave the window once they are periodMs old (the boundary excluded)', async (t) => {
  const time = clock()
  const r = new RestartIntensity(1, 1_000, time.now)
  t.equal(r.record(), true)
  time.advance(999)
  t.equal(r.record(), false, '999 ms later: two within the period')
  time.advance(1)
  t.equal(r.record(), false, 'the first is out at 1,000 ms, the second (1 ms ago) and this one are in')
  time.advance(1_000)
  t.equal(r.record(), true, 'the ones 1,000 ms old are out')
})

t.test('intensity 0: every restart is over the limit', async (t) => {
  const r = new RestartIntensity(0, 5_000, clock().now)
  t.equal(r.record(), false)
})

t.test('a steady rate under the limit is allowed forever; the refused ones count too', async (t) => {
  const time = clock()
  const r = new RestartIntensity(2, 1_000, time.now)
  for (let i = 0; i < 50; i++) {
    t.equal(r.record(), true, `restart ${i} (one every 500 ms)`)
    time.advance(500)
  }
  t.equal(r.record(), true)
  t.equal(r.record(), false, 'a burst on top is over')
  time.advance(500)
  t.equal(r.record(), false, 'the refused restart still fills the window')
  time.advance(1_000)
  t.equal(r.record(), true)
})

t.test('without a clock it reads the process clock', async (t) => {
  const r = new RestartIntensity(1, 60_000)
  t.equal(r.record(), true)
  t.equal(r.record(), false, 'two restarts in the same minute')
})

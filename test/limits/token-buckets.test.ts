/**
 * TokenBuckets on an injected clock: what a key may spend at once, how fast tokens come back and
 * when the answer says to retry. Time only moves when the test moves it, so a bucket that never
 * refills, or refills at the wrong rate, fails here.
 */
import t from 'tap'
import { TokenBuckets } from '../../src/limits/index.js'

function clock() {
  let now = 1_000
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

t.test('a burst of `capacity`, then one token every 1/perSecond', async (t) => {
  const time = clock()
  const buckets = new TokenBuckets(5, 5, undefined, time.now)
  for (let i = 0; i < 5; i++) t.equal(buckets.take('a'), 0, `token ${i + 1} of the burst`)
  t.equal(buckets.take('a'), 200, 'the sixth: the next token is 200 ms away')
  time.advance(199)
  t.equal(buckets.take('a'), 1, '1 ms before it is back: still refused, nothing taken')
  time.advance(1)
  t.equal(buckets.take('a'), 0, 'back after exactly 200 ms')
  t.equal(buckets.take('a'), 200, 'and spent again')
})

t.test('refills at its rate, never past its capacity', async (t) => {
  const time = clock()
  const buckets = new TokenBuckets(10, 2, undefined, time.now)
  for (let i = 0; i < 10; i++) buckets.take('a')
  time.advance(2_000)
  let taken = 0
  while (buckets.take('a') === 0) taken++
  t.equal(taken, 4, 'two seconds at 2 a second: four tokens')
  time.advance(3_600_000)
  taken = 0
  while (buckets.take('a') === 0) taken++
  t.equal(taken, 10, 'an hour later: the capacity, not more')
})

t.test('keys are independent; a cost of several tokens', async (t) => {
  const time = clock()
  const buckets = new TokenBuckets(100, 10, undefined, time.now)
  t.equal(buckets.take('a', 100), 0)
  t.equal(buckets.take('b', 60), 0, 'another key has its own bucket')
  t.equal(buckets.take('a', 30), 3_000, '30 tokens at 10 a second: 3 s')
  t.equal(buckets.wait('a', 30), 3_000, 'wait() reads the same without taking')
  time.advance(3_000)
  t.equal(buckets.wait('a', 30), 0)
  t.equal(buckets.take('a', 30), 0)
  t.equal(buckets.wait('never-seen'), 0, 'a key never seen has a full bucket')
})

t.test('charge() spends what was already incurred: the balance goes into debt and is repaid at the rate', async (t) => {
  const time = clock()
  const buckets = new TokenBuckets(1_000, 1_000, undefined, time.now)
  t.equal(buckets.charge('a', 600), 0, 'within the balance: no wait')
  t.equal(buckets.charge('a', 900), 500, '500 over: half a second to repay')
  t.equal(buckets.take('a'), 501, 'a take waits for the debt and its own token')
  time.advance(250)
  t.equal(buckets.charge('a', 0), 250, 'a quarter of a second later, half the debt is left')
  time.advance(250)
  t.equal(buckets.charge('a', 0), 0, 'repaid')
  t.equal(buckets.take('a'), 1, 'and not one token more')
})

t.test('memory is bounded: full buckets are swept, the oldest key goes past maxKeys, delete() forgets', async (t) => {
  const time = clock()
  const buckets = new TokenBuckets(2, 1, 3, time.now)
  for (const key of ['a', 'b', 'c']) buckets.take(key)
  t.equal(buckets.size, 3)
  buckets.take('d')
  t.equal(buckets.size, 3, 'past maxKeys the oldest bucket went')
  t.equal(buckets.take('a', 2), 0, '"a" starts full again: it was the one dropped')
  buckets.delete('a')
  t.equal(buckets.size, 2)
  time.advance(61_000)
  buckets.take('e')
  t.equal(buckets.size, 1, 'a sweep a minute on dropped every bucket that had refilled')
})

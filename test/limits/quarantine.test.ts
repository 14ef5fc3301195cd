/**
 * The crash quarantine on an injected clock: the back-off of an origin in a circle doubles with
 * each crash up to its maximum and is forgotten after the window; the whole circle is refused
 * only once crashes come from enough different origins within the window.
 */
import t from 'tap'
import { Quarantine } from '../../src/limits/index.js'

function clock() {
  let now = 50_000
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

const options = (now: () => number) => ({ baseMs: 1_000, maxMs: 8_000, windowMs: 60_000, circleOrigins: 3, now })

t.test('an origin that crashes a circle is refused there, for a back-off that doubles', async (t) => {
  const time = clock()
  const q = new Quarantine(options(time.now))
  t.same(q.refused('c1', 'A'), undefined, 'nothing is refused before a crash')
  t.match(q.crashed('c1', 'A'), { originMs: 1_000, origins: 1, circleMs: undefined })
  t.same(q.refused('c1', 'A'), { scope: 'origin', ms: 1_000 })
  t.same(q.refused('c1', 'B'), undefined, 'another origin uses the circle')
  t.same(q.refused('c2', 'A'), undefined, 'the origin uses other circles')
  time.advance(999)
  t.same(q.refused('c1', 'A'), { scope: 'origin', ms: 1 }, '1 ms before the back-off ends')
  time.advance(1)
  t.same(q.refused('c1', 'A'), undefined, 'over after exactly 1 s')
  t.equal(q.crashed('c1', 'A').originMs, 2_000, 'the second crash: 2 s')
  time.advance(2_000)
  t.equal(q.crashed('c1', 'A').originMs, 4_000)
  time.advance(4_000)
  t.equal(q.crashed('c1', 'A').originMs, 8_000)
  time.advance(8_000)
  t.equal(q.crashed('c1', 'A').originMs, 8_000, 'capped at maxMs')
  t.same(q.refused('c1', 'A'), { scope: 'origin', ms: 8_000 })
  t.equal(q.active, 1)
})

t.test('strikes are forgotten after the window without a crash', async (t) => {
  const time = clock()
  const q = new Quarantine(options(time.now))
  q.crashed('c1', 'A')
  q.crashed('c1', 'A')
  time.advance(60_000)
  t.equal(q.crashed('c1', 'A').originMs, 4_000, 'within the window: the third strike')
  time.advance(60_001)
  t.equal(q.crashed('c1', 'A').originMs, 1_000, 'a window and a millisecond later: the first again')
})

t.test('the circle is refused to everyone only once crashes come from 3 origins within the window', async (t) => {
  const time = clock()
  const q = new Quarantine(options(time.now))
  t.match(q.crashed('c1', 'A'), { origins: 1, circleMs: undefined })
  t.match(q.crashed('c1', 'A'), { origins: 1, circleMs: undefined }, 'the same origin again is still one origin')
  t.match(q.crashed('c1', 'B'), { origins: 2, circleMs: undefined })
  t.same(q.refused('c1', 'D'), undefined, 'two origins: others are served')
  t.match(q.crashed('c2', 'C'), { origins: 1, circleMs: undefined }, 'a crash in another circle does not count for this one')
  t.match(q.crashed('c1', 'C'), { origins: 3, circleMs: 1_000 }, 'the third origin quarantines the circle')
  t.same(q.refused('c1', 'D'), { scope: 'circle', ms: 1_000 }, 'refused to everyone')
  t.same(q.refused('c2', 'D'), undefined, 'other circles are not')
  time.advance(1_000)
  t.same(q.refused('c1', 'D'), undefined, 'until the circle back-off ends')
  t.match(q.crashed('c1', 'D'), { origins: 3, circleMs: 2_000 }, 'a further crash within the window doubles the circle back-off')
})

t.test('crashes from 3 origins spread over more than the window do not quarantine the circle', async (t) => {
  const time = clock()
  const q = new Quarantine(options(time.now))
  q.crashed('c1', 'A')
  time.advance(30_000)
  q.crashed('c1', 'B')
  time.advance(30_001)
  t.match(q.crashed('c1', 'C'), { origins: 2, circleMs: undefined }, 'A crashed 60,001 ms ago: out of the window')
  t.same(q.refused('c1', 'D'), undefined)
})

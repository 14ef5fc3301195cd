import t from 'tap'
import { setImmediate as turnEnd } from 'node:timers/promises'
import { TurnBatch } from '../../src/turns/index.js'

t.test('what a turn asks for is flushed once, at its end; the next turn gets a flush of its own', async (t) => {
  const pending: number[] = []
  const flushed: number[][] = []
  const batch = new TurnBatch(() => flushed.push(pending.splice(0)))
  for (let i = 0; i < 3; i++) {
    pending.push(i)
    batch.schedule()
  }
  t.equal(batch.pending, true)
  t.same(flushed, [], 'nothing before the turn ends')
  await turnEnd()
  t.same(flushed, [[0, 1, 2]], 'one flush for the turn')
  t.equal(batch.pending, false)
  pending.push(3)
  batch.schedule()
  await turnEnd()
  t.same(flushed, [[0, 1, 2], [3]])
})

t.test('a flush that schedules again runs again on the next turn, not within itself', async (t) => {
  let runs = 0
  const batch: TurnBatch = new TurnBatch(() => {
    if (++runs === 1) batch.schedule()
  })
  batch.schedule()
  await turnEnd()
  t.equal(runs, 1)
  await turnEnd()
  t.equal(runs, 2)
})

/**
 * ChainBudgets: a workflow's run budget is held by its runs, spent one run at a time, carried
 * in by calls from other nodes, and forgotten when the last hold is released.
 */
import t from 'tap'
import { ChainBudgets } from '../../src/calls/index.js'

t.test('the first hold spends the first run; spend until the budget is gone', async (t) => {
  const b = new ChainBudgets(3)
  t.equal(b.left('w'), 0, 'a workflow not held has nothing left')
  t.equal(b.spend('w'), false, 'nor can it spend')
  b.hold('w')
  t.equal(b.size, 1)
  t.equal(b.left('w'), 2)
  t.equal(b.spend('w'), true)
  t.equal(b.spend('w'), true)
  t.equal(b.left('w'), 0)
  t.equal(b.spend('w'), false, 'the fourth run of a budget of three')
  t.equal(b.left('w'), 0)
})

t.test('the entry lives while a run holds it: waves of calls cannot reset the budget', async (t) => {
  const b = new ChainBudgets(3)
  b.hold('w')
  b.spend('w')
  b.hold('w')
  b.release('w')
  t.equal(b.left('w'), 1, 'one hold released, one left: the spent runs stay')
  b.hold('w')
  t.equal(b.left('w'), 1, 'a further hold does not spend a run')
  b.release('w')
  b.release('w')
  t.equal(b.size, 0, 'the last hold released: forgotten')
  t.equal(b.left('w'), 0)
  b.release('w')
  t.equal(b.size, 0, 'releasing an unknown workflow is harmless')
  b.hold('w')
  t.equal(b.left('w'), 2, 'a new entry starts over')
})

t.test('a call from another node carries the runs spent there', async (t) => {
  const b = new ChainBudgets(10)
  b.hold('w', 7)
  t.equal(b.left('w'), 3)
  b.hold('w', 4)
  t.equal(b.left('w'), 3, 'a hold with fewer spent keeps the larger count')
  b.hold('w', 9)
  t.equal(b.left('w'), 1, 'a hold with more spent raises it')
  b.hold('x', 0)
  t.equal(b.left('x'), 9, 'at least the first run counts')
  b.hold('y', 12)
  t.equal(b.left('y'), 0, 'over-spent elsewhere: nothing left, not negative')
  t.equal(b.spend('y'), false)
  t.equal(b.size, 3)
})

t.test('workflows are independent', async (t) => {
  const b = new ChainBudgets(2)
  b.hold('a')
  b.hold('b')
  t.equal(b.spend('a'), true)
  t.equal(b.spend('a'), false)
  t.equal(b.left('b'), 1)
  b.release('a')
  t.equal(b.size, 1)
  t.equal(b.left('b'), 1)
})

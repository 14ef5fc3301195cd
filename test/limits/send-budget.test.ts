/**
 * The send budget: bytes waiting on sockets, bounded per socket, per origin and for the node.
 * Past a budget the socket of that scope holding the most is cut — first with a coded close,
 * then for good if the budget is still over — and what it held counts no more once closed.
 */
import t from 'tap'
import { SendBudget, type SendAccount, type SendBudgetName } from '../../src/limits/index.js'

/** A cut socket's owner drops what waited for it (credits it back). */
const drop = (account: SendAccount) => account.credit(account.bytes)

function setup(perSocket: number, perAddress: number, perNode: number, applies = true) {
  const budget = new SendBudget({ perSocket, perAddress, perNode, appliesTo: () => applies })
  const cuts: string[] = []
  const open = (name: string, origin: string, onFirstCut: (account: SendAccount) => void = () => {}) => {
    const account: SendAccount = budget.open(origin, (scope: SendBudgetName, final: boolean) => {
      cuts.push(`${name}:${scope}${final ? ':final' : ''}`)
      if (!final) onFirstCut(account)
    })
    return account
  }
  return { budget, cuts, open }
}

t.test('charged bytes are credited back; a socket over its own budget is cut', async (t) => {
  const { budget, cuts, open } = setup(100, 1_000, 10_000)
  const a = open('a', 'x')
  a.charge(60)
  a.charge(40)
  t.equal(budget.bytes, 100)
  t.same(cuts, [], 'at the budget: not over it')
  a.credit(30)
  t.equal(budget.bytes, 70)
  a.charge(31)
  t.same(cuts, ['a:socket'], 'one byte over: cut')
  t.equal(a.state, 'cut')
})

t.test('an origin over its budget loses the socket holding most', async (t) => {
  const { budget, cuts, open } = setup(1_000, 100, 10_000)
  const [a] = ([['a', 'x', 30], ['b', 'x', 60], ['c', 'y', 90]] as const).map(([name, origin, bytes]) => {
    const account = open(name, origin, drop)
    account.charge(bytes)
    return account
  })
  t.same(cuts, [], 'y is another origin, within its own budget')
  a!.charge(11)
  t.same(cuts, ['b:address'], 'x is at 101: b, holding 60, is cut — not a, which charged last')
  t.equal(budget.bytes, 131)
})

t.test('off for origins the per-address limits do not apply to', async (t) => {
  const { cuts, open } = setup(1_000, 100, 10_000, false)
  open('a', 'x').charge(500)
  open('b', 'x').charge(500)
  t.same(cuts, [])
})

t.test('the node over its budget loses the sockets holding most until it is under', async (t) => {
  const { budget, cuts, open } = setup(1_000, 10_000, 1_000)
  const small = open('small', 'x', drop)
  const big = open('big', 'y', drop)
  const bigger = open('bigger', 'z', drop)
  small.charge(100)
  big.charge(400)
  bigger.charge(450)
  small.charge(100)
  t.same(cuts, ['bigger:node'], '1,050 bytes: the largest went, 600 are left')
  t.equal(budget.bytes, 600)
})

t.test('a cut socket that still holds most is cut for good, and its bytes stop counting', async (t) => {
  const { budget, cuts, open } = setup(1_000, 10_000, 1_000)
  // This owner cannot drop anything: all of it is in the socket already.
  const stuck = open('stuck', 'x')
  const other = open('other', 'y')
  stuck.charge(900)
  other.charge(200)
  t.same(cuts, ['stuck:node', 'stuck:node:final'])
  t.equal(stuck.state, 'closed')
  t.equal(budget.bytes, 200)
  stuck.credit(900)
  t.equal(budget.bytes, 200, 'credits after the close change nothing')
})

t.test('close() releases what the socket held', async (t) => {
  const { budget, open } = setup(1_000, 1_000, 10_000)
  const a = open('a', 'x')
  a.charge(700)
  a.close()
  t.equal(budget.bytes, 0)
  a.charge(10)
  t.equal(budget.bytes, 0, 'a closed account charges nothing')
  const b = open('b', 'x')
  b.charge(999)
  t.equal(budget.bytes, 999, 'the origin has its whole budget again')
})

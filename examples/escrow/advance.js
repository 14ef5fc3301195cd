// Escrow: move this context's side of the deal one step, after checking the other side's state.
// Run by either party's owner, in that party's own context:
//   buyer:  funded → released  (once the seller's deal names this buyer, the same amount, shipped)
//   seller: open → shipped     (once the buyer's deal names this seller, the same amount, funded)
//           shipped → paid     (once the buyer has released)
// Each context writes only its own `deal` (policy `write: owner`); it reads the other's with a
// call, which runs as this context under the other's `run` rule. Run twice, a step does nothing
// the second time: a re-run after a node died, or a retry, is harmless.
(async () => {
  const mine = load_data('deal')
  if (mine === null) throw new Error('no deal in this context: save one first')
  const other = mine.role === 'buyer' ? mine.seller : mine.buyer
  const theirs = await call(other, 'load_data("deal")')
  const namesMe = theirs !== null && (mine.role === 'buyer' ? theirs.buyer : theirs.seller) === CIRCLE_PUBLIC_KEY
  if (!namesMe || theirs.amount !== mine.amount) return { state: mine.state, waiting: 'the other side has no matching deal' }
  let next = mine.state
  if (mine.role === 'buyer' && mine.state === 'funded' && theirs.state === 'shipped') next = 'released'
  if (mine.role === 'seller' && mine.state === 'open' && theirs.state === 'funded') next = 'shipped'
  if (mine.role === 'seller' && mine.state === 'shipped' && theirs.state === 'released') next = 'paid'
  if (next !== mine.state) save_data('deal', { ...mine, state: next })
  return { state: next, theirs: theirs.state }
})()

/**
 * The peer actor and calls: a run suspended on a call holds no place in its context's window of
 * runs in flight, so contexts whose calls cross one another cannot wait on each other for good.
 */
import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { OPEN_CALLS } from '../helpers/calls.js'
import { startNode } from '../helpers/node.js'

t.test('workflows whose calls cross keep flowing through windows of 4 runs', async (t) => {
  const { node } = await startNode(t, { peers: { maxRunsInFlight: 4 } })
  const a = generateKeyPair().publicKey
  const b = generateKeyPair().publicKey
  for (const pubkey of [a, b]) await node.peers.spawnPeer({ pubkey, policy: OPEN_CALLS })
  const client = generateKeyPair().publicKey
  // 20 runs in each context, each waiting on a call into the other: were waiting runs counted,
  // each window would fill with runs waiting on calls queued behind them in the other's mailbox.
  const workflow = (from: string, to: string, i: number) =>
    node.peers.play(from, { caller: client, script: `(async () => [${i}, await call('${to}', 'CIRCLE_PUBLIC_KEY')])()` })
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => [workflow(a, b, i), workflow(b, a, i)]).flat())
  t.same(
    answers.map((answer) => answer.result),
    Array.from({ length: 20 }, (_, i) => [[i, b], [i, a]]).flat(),
  )
})

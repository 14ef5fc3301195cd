/**
 * CallRouter.enter: the entry for a call another node sent. It checks the chain again — the
 * sending node's word is not taken for it — and holds the workflow's budget as spent as the
 * call says, so that the callee's own calls draw on what is left.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { CallRouter, type CalleeRequest, type CallRequest } from '../../src/calls/index.js'
import { generateKeyPair, type PublicKeyHex } from '../../src/identity/index.js'
import type { RunOutcome } from '../../src/protocol/index.js'

const [client, a, b, c] = Array.from({ length: 4 }, () => generateKeyPair().publicKey)
const done: RunOutcome = { code: null, message: '', body: '"result":1', runMs: 1, cpuMs: 1, callsMs: 0 }

function routerWith(dispatch: (target: PublicKeyHex, request: CalleeRequest) => Promise<RunOutcome>, maxRunsPerChain = 10) {
  return new CallRouter({ maxDepth: 3, maxScriptBytes: 1_000, maxRunsPerChain, dispatch })
}

const call = (over: Partial<CallRequest> = {}): CallRequest => ({
  target: b!,
  script: '1',
  caller: a as PublicKeyHex,
  chain: [client!, a!],
  chainId: randomUUID(),
  deadline: Date.now() + 60_000,
  ...over,
})

t.test('a call from another node is checked again before its callee runs', async (t) => {
  const ran: string[] = []
  const router = routerWith(async () => {
    throw new Error('dispatch is not the entry: enter runs its own')
  })
  const run = async (target: PublicKeyHex) => {
    ran.push(target)
    return done
  }
  t.match(await router.enter(call({ target: a! }), 5, run), { code: 'CALL_CYCLE' }, 'a callee already on the chain')
  t.match(await router.enter(call({ chain: [client!, c!, ...[1, 2].map(() => generateKeyPair().publicKey), a!] }), 5, run), { code: 'CALL_DEPTH_EXCEEDED' }, 'a chain deeper than this node allows')
  t.match(await router.enter(call({ chain: [client!, c!] }), 5, run), { code: 'INVALID_PARAMS' }, 'a caller that does not end its chain')
  t.match(await router.enter(call({ deadline: Date.now() - 1 }), 5, run), { code: 'SCRIPT_TIMEOUT' }, 'a calling run with no time left')
  t.same(ran, [], 'none of them ran')
  t.same(await router.enter(call(), 5, run), done, 'a call that passes runs, once')
  t.same(ran, [b])
  t.equal(router.workflows, 0, 'and its workflow is let go when it ends')
})

t.test('the callee’s own calls draw on the runs the call carried', async (t) => {
  let router!: CallRouter
  const chainId = randomUUID()
  // The callee b calls c until refused: it may start as many runs as the call said were left.
  const results: (string | null)[] = []
  const run = async (): Promise<RunOutcome> => {
    for (let i = 0; i < 10; i++) {
      const outcome = await router.route({ target: c!, script: '1', caller: b as PublicKeyHex, chain: [client!, a!, b!], chainId, deadline: Date.now() + 60_000 })
      results.push(outcome.code)
      if (outcome.code !== null) break
    }
    return done
  }
  router = routerWith(async () => done)
  await router.enter(call({ chainId }), 3, run)
  t.same(results, [null, null, null, 'CALL_BUDGET_EXCEEDED'], '3 runs left: 3 calls, then the budget is spent')

  // A workflow this node holds already keeps the larger count of runs spent.
  const second = randomUUID()
  router.hold(second)
  for (let i = 0; i < 6; i++) await router.route({ target: c!, script: '1', caller: a as PublicKeyHex, chain: [client!, a!], chainId: second, deadline: Date.now() + 60_000 })
  const left: (string | null)[] = []
  await router.enter(call({ chainId: second }), 9, async () => {
    for (let i = 0; i < 10; i++) {
      const outcome = await router.route({ target: c!, script: '1', caller: b as PublicKeyHex, chain: [client!, a!, b!], chainId: second, deadline: Date.now() + 60_000 })
      left.push(outcome.code)
      if (outcome.code !== null) break
    }
    return done
  })
  router.release(second)
  t.same(left, [null, null, null, 'CALL_BUDGET_EXCEEDED'], 'the call said 9 left, but this node had spent 7 of 10: 3 more')
})

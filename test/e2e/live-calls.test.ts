/**
 * Live updates of runs that call other contexts, through a node: a run suspended on a call
 * reports every effect of all its slices once, in order, when it ends; a callee's effects are
 * its own context's.
 */
import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { OPEN_CALLS } from '../helpers/calls.js'
import { startNode } from '../helpers/node.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'

const caller = generateKeyPair()
const test = await startNode(t, { policy: OPEN_CALLS })
const A = test.circle.publicKey
const callee = generateKeyPair()
const B = callee.publicKey
await test.node.peers.spawnPeer({ pubkey: B, policy: OPEN_CALLS })

async function socketOn(context: string): Promise<RawSocket> {
  const socket = await openSocket(`${test.url}${context}`)
  await authenticate(socket, caller)
  t.teardown(() => socket.close())
  return socket
}

async function ok(socket: RawSocket, method: string, params: unknown): Promise<any> {
  const answer = await socket.call(method, params)
  if (answer.error !== undefined) throw new Error(`${method}: ${JSON.stringify(answer.error)}`)
  return answer.result
}

/** The next `n` notifications of a socket, as `seq method name-or-topic value`. */
async function notices(socket: RawSocket, n: number): Promise<string[]> {
  const got: string[] = []
  for (let i = 0; i < n; i++) {
    const { method, params } = await socket.next()
    got.push(`${params.seq} ${method} ${params.name ?? params.topic} ${JSON.stringify(params.value)}${params.caller === undefined ? '' : ` from ${params.caller}`}`)
  }
  return got
}

const watchA = await socketOn(A)
const watchB = await socketOn(B)
await ok(watchA, 'subscribe', {})
await ok(watchB, 'subscribe', {})
const client = await socketOn(A)

t.test('save, call another context, save again: both changes on the caller’s context, in order; the callee’s on its own', async (t) => {
  const played = await ok(client, 'play', {
    script: `(async () => {
      save_data('step', 1)
      emit('progress', 'calling')
      const got = await call('${B}', 'save_data("mine", "from b"); emit("b/done", 7); 42')
      save_data('step', got)
      return got
    })()`,
  })
  t.equal(played.result, 42)
  t.ok(played.timings.calls_ms > 0, 'the run was suspended on its call')
  t.same(
    await notices(watchA, 3),
    ['1 changed step 1', `2 event progress "calling" from ${caller.publicKey}`, '3 changed step 42'],
    'the caller’s effects, before and after its await, in the order it made them',
  )
  t.same(await notices(watchB, 2), ['1 changed mine "from b"', `2 event b/done 7 from ${A}`], 'the callee’s writes notify the callee’s subscribers; its events name the calling context')

  await t.test('each once: the next change of either context comes next', async (t) => {
    await ok(client, 'play', { script: `save_data('marker', 'a'); call('${B}', 'save_data("marker", "b")')` })
    t.same(await notices(watchA, 1), ['4 changed marker "a"'])
    t.same(await notices(watchB, 1), ['3 changed marker "b"'])
  })
})

t.test('a run that fails after its call reports what it committed, before the call and after it', async (t) => {
  const answer = await client.call('play', {
    script: `(async () => {
      save_data('before', 1)
      await call('${B}', '1')
      save_data('after', 2)
      throw new Error('late')
    })()`,
  })
  t.match(answer.error, { data: { code: 'SCRIPT_ERROR' } })
  t.same(await notices(watchA, 2), ['5 changed before 1', '6 changed after 2'])
})

t.test('a callee that fails keeps its committed writes on its own context; the caller goes on', async (t) => {
  const played = await ok(client, 'play', {
    script: `(async () => {
      const code = await call('${B}', 'save_data("half", 1); throw new Error("no")').catch((e) => e.code)
      save_data('caught', code)
      return code
    })()`,
  })
  t.equal(played.output, 'SCRIPT_ERROR')
  t.same(await notices(watchB, 1), ['4 changed half 1'])
  t.same(await notices(watchA, 1), ['7 changed caught "SCRIPT_ERROR"'])
})

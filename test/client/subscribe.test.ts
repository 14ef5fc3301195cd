import t from 'tap'
import { WebSocket } from 'ws'
import { CirclesClient, RpcError, type ClientState, type LiveNotice, type SubscribeFilter, type WebSocketConstructor } from '../../src/client/index.js'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startNode } from '../helpers/node.js'
import { waitUntil } from '../helpers/wait.js'

/**
 * A client whose connections the test can cut (terminate: no close frame, as a network drop) and
 * hold off (new connections fail while `blocked`), and its notices as they come.
 */
function cuttableClient(t: { teardown(fn: () => unknown): void }, url: string, key: KeyPair) {
  const sockets: WebSocket[] = []
  const gate = { blocked: false }
  class Cuttable extends WebSocket {
    constructor(address: string) {
      if (gate.blocked) throw new Error('held off by the test')
      super(address)
      sockets.push(this)
    }
  }
  const client = CirclesClient.builder(url)
    .withKey(key.secretKey)
    .withWebSocket(Cuttable as unknown as WebSocketConstructor)
    .withReconnect({ initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 10_000 })
    .build()
  t.teardown(() => client.close())
  const notices: LiveNotice[] = []
  const waiters: (() => void)[] = []
  const handler = (notice: LiveNotice) => {
    notices.push(notice)
    for (const wake of waiters.splice(0)) wake()
  }
  /** Resolves once `count` notices have come. */
  const received = async (count: number) => {
    while (notices.length < count) await new Promise<void>((resolve) => waiters.push(resolve))
    return notices.slice(0, count)
  }
  const reached = (wanted: ClientState) => new Promise<void>((resolve) => client.onStateChange((s) => s === wanted && resolve()))
  const cut = () => sockets.at(-1)!.terminate()
  return { client, notices, handler, received, reached, cut, gate }
}

/**
 * A client of a new node, subscribed with `filter`, that saw the notice of its play `first`,
 * then lost its connection and was held off while the owner ran `meanwhile`; `back()` lets it
 * reconnect and resolves once it has authenticated again.
 */
async function awayWhile(t: Parameters<typeof startNode>[0], options: Parameters<typeof startNode>[1], filter: SubscribeFilter, first: string, meanwhile: string) {
  const { node, circle, url } = await startNode(t, options)
  const away = cuttableClient(t, url, circle)
  const { client, handler, received, reached, cut, gate } = away
  await client.connect()
  await client.authenticate()
  await client.subscribe(filter, handler)
  await client.play(first)
  await received(1)
  gate.blocked = true
  const reconnecting = reached('reconnecting')
  cut()
  await reconnecting
  await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: meanwhile })
  const back = () => {
    const authenticated = reached('authenticated')
    gate.blocked = false
    return authenticated
  }
  return { ...away, back }
}

t.test('client.subscribe: notices in order, a refusal rejects, unsubscribe ends it', async (t) => {
  const { node, circle, url } = await startNode(t)
  const { client, handler, received, notices } = cuttableClient(t, url, circle)
  await client.connect()
  await client.authenticate()
  const stop = await client.subscribe({ prefix: 'posts/', topics: ['typing'] }, handler)
  await client.play('save_data("posts/1", { text: "a" }); save_data("other", 1); emit("typing", true); delete_data("posts/1")')
  const got = await received(3)
  t.match(got, [
    { type: 'changed', seq: 1, name: 'posts/1', op: 'save', value: { text: 'a' } },
    { type: 'event', seq: 3, topic: 'typing', value: true, caller: circle.publicKey },
    { type: 'changed', seq: 4, name: 'posts/1', op: 'delete' },
  ])
  t.equal((got[0] as { epoch: string }).epoch, (got[2] as { epoch: string }).epoch, 'one epoch')
  await stop()
  t.equal(node.peers.subscribersOf(circle.publicKey), 0, 'the node no longer holds it')
  await client.play('save_data("posts/2", 2)')
  await client.play('1')
  t.equal(notices.length, 3, 'nothing after unsubscribe')

  const stranger = CirclesClient.builder(url).withKey(generateKeyPair().secretKey).build()
  t.teardown(() => stranger.close())
  await stranger.connect()
  await stranger.authenticate()
  await node.peers.spawnPeer({ pubkey: circle.publicKey, policy: { run: 'authenticated', subscribe: 'owner' } })
  await t.rejects(stranger.subscribe({}, () => {}), RpcError)
  await t.rejects(stranger.subscribe({}, () => {}), { code: 'FORBIDDEN' })
})

t.test('after a reconnect the subscription resumes from the last notice it saw', async (t) => {
  const { client, received, back } = await awayWhile(t, {}, { prefix: 'n/' }, 'save_data("n/1", 1)', 'save_data("n/2", 2); save_data("x", 0); save_data("n/3", 3)')
  await back()
  const got = await received(3)
  t.match(got.slice(1), [
    { type: 'changed', seq: 2, name: 'n/2' },
    { type: 'changed', seq: 4, name: 'n/3' },
  ], 'what was missed, once, in order')
  await client.play('save_data("n/4", 4)')
  t.match((await received(4))[3], { type: 'changed', seq: 5, name: 'n/4' }, 'then live')
})

t.test('a gap the node cannot fill is handed to the handler as resync, then it goes on', async (t) => {
  const { client, received, back } = await awayWhile(t, { live: { log: { maxEntries: 2 } } }, {}, 'save_data("a", 1)', 'for (let i = 0; i < 5; i++) save_data("b" + i, i)')
  void back()
  const [, resync] = await received(2)
  t.match(resync, { type: 'resync', seq: 6, error: { code: 'RESYNC_REQUIRED' } })
  await client.play('save_data("c", 1)')
  t.match((await received(3))[2], { type: 'changed', seq: 7, name: 'c' })
})

t.test('a host crash under a live subscription: resync once it is in place again, then it goes on', async (t) => {
  const { node, circle, url, dbPath } = await startNode(t, { peers: { limits: { timeoutMs: 30_000, cpuMs: 30_000 } } })
  const { client, handler, received } = cuttableClient(t, url, circle)
  await client.connect()
  await client.authenticate()
  const first = await client.subscribe({}, handler)
  const crashing = client.play('save_data("before", 1); for (;;) {}').catch((error: unknown) => error)
  await waitUntil(() => existsSync(join(dbPath, circle.publicKey, 'data', 'before.json')), 'the write reached the disk')
  process.kill(node.sandbox.pids[0]!, 'SIGKILL')
  t.match(await crashing, { code: 'WORKER_CRASHED' })
  const [resync] = await received(1)
  t.match(resync, { type: 'resync', seq: 0, error: { code: 'RESYNC_REQUIRED' } })
  t.not((resync as { epoch: string }).epoch, first.epoch, 'a new epoch')
  await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'save_data("after", 1)' })
  t.match((await received(2))[1], { type: 'changed', seq: 1, name: 'after' })
})

t.test('a subscriber the policy drops gets ended with FORBIDDEN', async (t) => {
  const { node, circle, url } = await startNode(t)
  const alice = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: circle.publicKey, policy: { run: 'authenticated', subscribe: [alice.publicKey] } })
  const { client, handler, received } = cuttableClient(t, url, alice)
  await client.connect()
  await client.authenticate()
  await client.subscribe({}, handler)
  await node.peers.spawnPeer({ pubkey: circle.publicKey, policy: { run: 'authenticated', subscribe: 'owner' } })
  const [ended] = await received(1)
  t.match(ended, { type: 'ended', error: { code: 'FORBIDDEN', rpcCode: -32006 } })
})

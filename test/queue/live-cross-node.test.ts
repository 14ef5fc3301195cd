import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { silentLogger } from '../../src/log/index.js'
import { CircleNode } from '../../src/node/index.js'
import { QueueKeys, encodeFeedMessage, parseRedisTarget } from '../../src/queue/index.js'
import { metric } from '../helpers/cli-node.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startRedis, testPrefix } from '../helpers/redis-server.js'
import { waitUntil } from '../helpers/wait.js'

// Live updates through another node: node B hosts the contexts, node A is the gateway its
// subscribers connect to; both joined through a private redis-server (which the test watches
// with MONITOR, and restarts).

const SECRET = 'live-cross-node-test-secret-0123456789'
const POLICY = { run: 'anonymous', write: 'authenticated', subscribe: 'authenticated' }

async function startNode(t: { teardown(fn: () => unknown): void }, redisUrl: string, prefix: string, circles: { name: string; keyPair: KeyPair; policy?: unknown }[]): Promise<CircleNode> {
  const dbPath = mkdtempSync(join(tmpdir(), 'circles-test-xsubs-'))
  const node = await CircleNode.start({
    dbPath,
    circles: circles.map((c) => ({ ...c, host: '127.0.0.1', port: 0 })),
    sandbox: { processes: 1 },
    logger: silentLogger(),
    redis: { target: parseRedisTarget([redisUrl]), secret: SECRET, prefix },
    admin: { port: 0 },
  })
  t.teardown(async () => {
    await node.close()
    rmSync(dbPath, { recursive: true, force: true })
  })
  return node
}

async function peer(url: string, pair: KeyPair): Promise<RawSocket> {
  const socket = await openSocket(url)
  const answer = await authenticate(socket, pair)
  if (answer.error !== undefined) throw new Error(`authenticate: ${JSON.stringify(answer.error)}`)
  return socket
}

async function ok(socket: RawSocket, method: string, params: unknown): Promise<any> {
  const answer = await socket.call(method, params)
  if (answer.error !== undefined) throw new Error(`${method}: ${JSON.stringify(answer.error)}`)
  return answer.result
}

t.test('subscriptions through another node', { timeout: 120_000 }, async (t) => {
  const server = await startRedis(t)
  const prefix = testPrefix('xsubs')
  const keys = new QueueKeys(prefix)
  const board = generateKeyPair()
  const quiet = generateKeyPair()
  const nodeB = await startNode(t, server.url, prefix, [
    { name: 'board', keyPair: board, policy: POLICY },
    { name: 'quiet', keyPair: quiet, policy: POLICY },
  ])
  const nodeA = await startNode(t, server.url, prefix, [{ name: 'front', keyPair: generateKeyPair() }])
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  redis.on('error', () => {})
  await waitUntil(async () => (await redis.exists(keys.lease(board.publicKey), keys.lease(quiet.publicKey))) === 2, 'node B holds its leases')

  /** Every command Redis runs from now on (MONITOR on a connection of its own, ended at teardown). */
  async function monitorCommands(t: { teardown(fn: () => unknown): void }, mark: string): Promise<string[][]> {
    const base = new Redis(server.url)
    const monitor = await base.monitor()
    t.teardown(() => {
      monitor.disconnect()
      base.disconnect()
    })
    const commands: string[][] = []
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args))
    // MONITOR shows what comes after it: a first command proves it is on.
    await redis.ping(mark)
    await waitUntil(() => commands.some((c) => c[1] === mark), 'MONITOR shows the ping')
    return commands
  }

  const urlOnB = (name: string) => nodeB.served.find((c) => c.name === name)!.url
  const viaA = (key: string) => `${nodeA.served[0]!.url}${key}`
  const alice = generateKeyPair()
  const carol = generateKeyPair()
  const writer = await peer(urlOnB('board'), generateKeyPair())
  const quietWriter = await peer(urlOnB('quiet'), generateKeyPair())
  const watcher = await peer(viaA(board.publicKey), alice)

  const subscribed = await ok(watcher, 'subscribe', { prefix: 'p/' })
  t.match(subscribed, { subscription: 's1', epoch: /^[0-9a-f]{16}$/, seq: 0 }, "answered with the owner's position")
  let seq = 0

  await t.test('changes made on B arrive at a subscriber on A, in order', async (t) => {
    for (let n = 0; n < 200; n++) await ok(writer, 'play', { script: `save_data("p/${n}", { n: ${n} })` })
    await ok(writer, 'play', { script: 'save_data("other", 1)' })
    for (let n = 0; n < 200; n++) {
      const message = await watcher.next()
      t.match(message, { method: 'changed', params: { subscription: 's1', epoch: subscribed.epoch, seq: ++seq, name: `p/${n}`, op: 'save', value: { n } } })
      if (message.params?.seq !== seq) return
    }
    // "other" is not under the prefix: it is numbered, not sent.
    seq++
    await ok(writer, 'play', { script: 'save_data("p/last", true)' })
    t.match(await watcher.next(), { method: 'changed', params: { seq: ++seq, name: 'p/last' } }, 'the filter applies on A')
    // The gateway counts its subscribers and what they received; the owner, no socket of its own.
    t.equal(await metric(nodeA.adminUrl!, 'circles_subscriptions'), 1)
    t.equal(await metric(nodeA.adminUrl!, 'circles_notifications_total'), 201)
    t.equal(await metric(nodeB.adminUrl!, 'circles_subscriptions'), 0)
    t.equal(await metric(nodeB.adminUrl!, 'circles_notifications_total'), 0)
  })

  await t.test('nothing is published for a context nobody subscribes to (MONITOR)', async (t) => {
    const commands = await monitorCommands(t, 'monitor-on')
    for (let n = 0; n < 50; n++) await ok(quietWriter, 'play', { script: `save_data("p/${n}", ${n}); emit("news", ${n})` })
    // A write to the watched context after them: its notice goes through the same connection,
    // so once it is published, anything the quiet context's writes published went before it.
    await ok(writer, 'play', { script: 'save_data("p/after-quiet", 1)' })
    t.match(await watcher.next(), { method: 'changed', params: { seq: ++seq, name: 'p/after-quiet' } })
    await waitUntil(() => commands.some((c) => c[0]?.toLowerCase() === 'publish' && c[1] === `${prefix}feed:{${board.publicKey}}`), 'MONITOR shows the watched context published')
    const naming = commands.filter((c) => c.some((arg) => arg.includes(quiet.publicKey)))
    const published = commands.filter((c) => c[0]?.toLowerCase() === 'publish')
    t.same(
      naming.filter((c) => !(c[0]?.toLowerCase() === 'set' && c[1] === keys.lease(quiet.publicKey))),
      [],
      'no command names the unwatched context (but for its lease renewal)',
    )
    t.ok(published.length > 0, 'the watched context was published meanwhile')
    t.same(
      published.filter((c) => c[1] !== `${prefix}feed:{${board.publicKey}}` && c[1] !== `${prefix}feeds:watch`),
      [],
      "every PUBLISH is on the watched context's channel (or the watch channel)",
    )
  })

  await t.test('a subscriber that comes back resumes from its position: what it missed comes from the owner', async (t) => {
    const socket = await peer(viaA(quiet.publicKey), alice)
    t.teardown(() => socket.close())
    const first = await ok(socket, 'subscribe', {})
    t.equal(first.seq, 100, "the quiet context's position: its 50 runs wrote and emitted")
    // Its last subscriber on A goes: A stops watching, and holds nothing of the context.
    t.same(await ok(socket, 'unsubscribe', { subscription: first.subscription }), { unsubscribed: true })
    for (let n = 0; n < 3; n++) await ok(quietWriter, 'play', { script: `save_data("missed/${n}", ${n})` })
    const back = await ok(socket, 'subscribe', { prefix: 'missed/', after: { epoch: first.epoch, seq: first.seq } })
    t.match(back, { epoch: first.epoch, seq: 103 })
    for (let n = 0; n < 3; n++) t.match(await socket.next(), { method: 'changed', params: { subscription: back.subscription, epoch: first.epoch, seq: 101 + n, name: `missed/${n}` } })
    await ok(quietWriter, 'play', { script: 'save_data("missed/live", 1)' })
    t.match(await socket.next(), { method: 'changed', params: { seq: 104, name: 'missed/live' } }, 'then live')
    t.match(await socket.call('subscribe', { after: { epoch: '0123456789abcdef', seq: 1 } }), { error: { data: { code: 'RESYNC_REQUIRED', epoch: first.epoch, seq: 104 } } }, 'another epoch: RESYNC_REQUIRED')
    t.equal(nodeB.peers.subscribersOf(quiet.publicKey), 1, "B relays the context: one subscriber to its feed, whatever A's count")

    // Its last subscriber on A goes: B stops publishing it.
    socket.close()
    await waitUntil(() => nodeB.peers.subscribersOf(quiet.publicKey) === 0, 'B no longer relays the context')
    const commands = await monitorCommands(t, 'monitor-on-again')
    for (let n = 0; n < 5; n++) await ok(quietWriter, 'play', { script: `save_data("missed/after-${n}", ${n})` })
    await ok(writer, 'play', { script: 'save_data("p/after-unwatch", 1)' })
    t.match(await watcher.next(), { method: 'changed', params: { seq: ++seq, name: 'p/after-unwatch' } })
    await waitUntil(() => commands.some((c) => c[0]?.toLowerCase() === 'publish' && c[1] === `${prefix}feed:{${board.publicKey}}`), 'MONITOR shows the watched context published')
    t.same(
      commands.filter((c) => c.some((arg) => arg.includes(quiet.publicKey)) && !(c[0]?.toLowerCase() === 'set' && c[1] === keys.lease(quiet.publicKey))),
      [],
      'nothing names the context once nobody watches it',
    )
  })

  await t.test("a notice without the cluster's MAC is refused", async (t) => {
    const channel = `${prefix}feed:{${board.publicKey}}`
    const body = JSON.stringify({ k: 'n', c: board.publicKey, e: subscribed.epoch, l: [[seq + 1, { type: 'changed', name: 'p/forged', op: 'save', value: '1' }]] })
    const forged = encodeFeedMessage('not the cluster secret', JSON.parse(body))
    t.equal(await redis.publish(channel, forged), 1, 'node A reads the channel')
    t.equal(await redis.publish(channel, `AAAA ${body}`), 1)
    await ok(writer, 'play', { script: 'save_data("p/real", 1)' })
    t.match(await watcher.next(), { method: 'changed', params: { seq: ++seq, name: 'p/real' } }, 'only the owner\'s notice arrives')
    t.equal(await metric(nodeA.adminUrl!, 'circles_cross_node_refused_total'), 2, 'both refused and counted')
  })

  await t.test("a policy change on B ends the subscriptions on A that it refuses", async (t) => {
    const other = await peer(viaA(board.publicKey), carol)
    t.teardown(() => other.close())
    const carols = await ok(other, 'subscribe', {})
    t.equal(carols.epoch, subscribed.epoch)
    await nodeB.peers.spawnPeer({ pubkey: board.publicKey, policy: { ...POLICY, subscribe: [alice.publicKey] } })
    t.match(await other.next(), {
      method: 'subscription_ended',
      params: { subscription: carols.subscription, code: 'FORBIDDEN', message: "The circle's policy does not let this caller subscribe" },
    })
    t.match(await other.call('subscribe', {}), { error: { code: -32006, data: { code: 'FORBIDDEN' } } }, 'and a new subscribe is refused')
    await ok(writer, 'play', { script: 'save_data("p/after-policy", 1)' })
    t.match(await watcher.next(), { method: 'changed', params: { seq: ++seq, name: 'p/after-policy' } }, 'an admitted subscriber goes on')
  })

  await t.test('a Redis restart: the subscriber on A resumes, missing nothing', async (t) => {
    await server.stop('shutdown')
    // Writes on B go on while Redis is away; their notices cannot be published.
    for (let n = 0; n < 5; n++) await ok(writer, 'play', { script: `save_data("p/away-${n}", ${n})` })
    await server.restart()
    for (let n = 0; n < 5; n++) t.match(await watcher.next(), { method: 'changed', params: { subscription: 's1', epoch: subscribed.epoch, seq: ++seq, name: `p/away-${n}` } })
    await ok(writer, 'play', { script: 'save_data("p/back", 1)' })
    t.match(await watcher.next(), { method: 'changed', params: { epoch: subscribed.epoch, seq: ++seq, name: 'p/back' } }, 'and what comes after')
  })
  for (const socket of [writer, quietWriter, watcher]) socket.close()
  await Promise.all([writer, quietWriter, watcher].map((socket) => socket.closed))
  // Closed while Redis is up (the teardown's close would wait on a Redis already gone).
  await nodeA.close()
  await nodeB.close()
})

import t from 'tap'
import { Faults } from '../../src/faults/index.js'
import { parseRedisTarget } from '../../src/queue/index.js'
import type { SupervisorTree } from '../../src/supervisor/index.js'
import { captureLog } from '../helpers/log-capture.js'
import { startNode } from '../helpers/node.js'
import { startRedis, testPrefix } from '../helpers/redis-server.js'

// The node is a table of child specs: the sandbox pool, the peer host and the Redis bridge are
// children of its root, each stopped by the root and each reporting failures of its own code.

const SECRET = 'children-test-secret-0123456789'

function rootChild(tree: SupervisorTree, id: string) {
  return tree.children.find((c) => c.id === id)
}

async function healthOf(admin: string): Promise<{ status: string; failing?: string[] }> {
  return (await (await fetch(`${admin}/healthz`)).json()) as { status: string; failing?: string[] }
}

t.test('the peer host is a child: a drain stops its actors, and counts no passivation', async (t) => {
  const { node, circle } = await startNode(t)
  const peers = node.peers
  await node.play(circle.publicKey, { caller: circle.publicKey, script: '1 + 1' })
  t.equal(peers.size.active, 1, 'a live actor')
  t.match(rootChild(node.tree(), 'peers'), { type: 'supervisor', restart: 'permanent', status: 'running' })
  await node.close()
  t.equal(peers.counters.passivations, 0, 'stopped by the drain, not passivated')
  t.equal(peers.size.active, 0, 'no actor left')
  t.match(node.tree(), { state: 'stopped' })
})

t.test('the sandbox pool is a child: its hosts under it, and a stopped node answers runs rather than keep them', async (t) => {
  const { node } = await startNode(t)
  t.match(rootChild(node.tree(), 'sandbox'), { type: 'supervisor', children: [{ id: 'host-0', status: 'running' }] })
  const pool = node.sandbox
  await node.close()
  t.same(pool.stats.map((h) => h.queued), [0], 'nothing left queued')
})

t.test('Redis away is a state the bridge rides out: degraded, no restart, the node serves on', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis(t)
  const log = captureLog('info')
  const { node, circle, admin } = await startNode(t, {
    logger: log.logger,
    redis: { target: parseRedisTarget([redis.url]), secret: SECRET, prefix: testPrefix('children-outage') },
  })
  await log.waitFor((l) => l.msg === 'connected to redis')
  t.match(await healthOf(admin), { status: 'ok' })
  let from = log.mark()
  await redis.stop('shutdown')
  await log.waitFor((l) => /redis connection lost/.test(l.msg), 15_000, from)
  t.match(await healthOf(admin), { status: 'degraded', failing: ['redis'] }, 'degraded while Redis is away')
  t.match(rootChild(node.tree(), 'redis'), { status: 'running', restarts: 0 }, 'the bridge is still the same child')
  t.equal((await node.play(circle.publicKey, { caller: circle.publicKey, script: '2 + 2' })).output, '4', 'local plays are served')
  from = log.mark()
  await redis.restart()
  await log.waitFor((l) => l.msg === 'connected to redis', 15_000, from)
  t.match(await healthOf(admin), { status: 'ok' })
  t.match(rootChild(node.tree(), 'redis'), { status: 'running', restarts: 0 }, 'never restarted')
  t.notOk(log.lines.some((l) => l.msg === 'restarting child' || l.msg === 'child exited'), 'no child exited, nothing counted toward the root')
})

t.test("the bridge's own failure: the redis child (permanent) is restarted under a new node id, counted", { timeout: 60_000 }, async (t) => {
  const redis = await startRedis(t)
  const log = captureLog('info')
  const faults = new Faults(['bridge-crash'])
  const { node, circle } = await startNode(t, {
    logger: log.logger,
    faults,
    redis: { target: parseRedisTarget([redis.url]), secret: SECRET, prefix: testPrefix('children-crash') },
  })
  await log.waitFor((l) => l.msg === 'connected to redis')
  const first = node.redis!.nodeId
  const from = log.mark()
  t.equal(faults.trigger('bridge-crash', ''), 1, 'the bridge heard the fault')
  t.match(await log.waitFor((l) => l.msg === 'child exited', 15_000, from), { supervisor: 'root', child: 'redis', reason: /bridge-crash/ })
  t.match(await log.waitFor((l) => l.msg === 'restarting child', 15_000, from), { supervisor: 'root', child: 'redis', counted: true })
  await log.waitFor((l) => l.msg === 'connected to redis', 15_000, from)
  t.not(node.redis!.nodeId, first, 'a new bridge, under a new node id')
  t.match(rootChild(node.tree(), 'redis'), { status: 'running', restarts: 1 })
  t.equal((await node.play(circle.publicKey, { caller: circle.publicKey, script: '3 + 3' })).output, '6', 'the node serves on')
})

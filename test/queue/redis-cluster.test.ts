import t from 'tap'
import { secretKeySigner } from '../../src/client/index.js'
import { connectedClient } from '../helpers/client.js'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import { mkdirSync } from 'node:fs'
import type { RpcError } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, connectRedis, hashSlot, parseRedisTarget } from '../../src/queue/index.js'
import { NAMESPACE_DIRS, namespacePath } from '../../src/storage/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { freePort, startRedis, type RedisProcess } from '../helpers/redis-server.js'

// A 3-master Redis Cluster of local redis-server processes on free ports, and two nodes joined
// through it by a redis+cluster:// URL: cross-node plays to contexts whose keys land on different
// masters, and the scripts that read task keys they did not declare (same hash tag, same slot).

const SECRET = 'redis-cluster-test-secret-0123456789'

async function startCluster(t: Parameters<typeof startRedis>[0]): Promise<RedisProcess[]> {
  const servers: RedisProcess[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    servers.push(
      await startRedis(t, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--appendonly', 'no', '--save', ''], { port }),
    )
  }
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  // Every master must see the whole cluster before clients are pointed at it.
  for (const s of servers) {
    const probe = new Redis(s.url)
    while (!/cluster_state:ok/.test(await probe.cluster('INFO'))) await sleep(50)
    probe.disconnect()
  }
  return servers
}

t.test('cross-node plays through a 3-master Redis Cluster', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const servers = await startCluster(t)
  const url = `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`
  const cluster = new Cluster(servers.map((s) => ({ host: '127.0.0.1', port: s.port })))
  t.teardown(() => cluster.disconnect())
  const keys = new QueueKeys('rhailib:')
  // Three contexts whose keys live on three different masters, served by one multi-peer worker.
  const shards = (await cluster.cluster("SLOTS")) as unknown as [number, number, [string, number]][]
  const masterOf = async (key: string) => {
    const slot = Number(await cluster.cluster('KEYSLOT', key))
    return shards.find(([from, to]) => slot >= from && slot <= to)![2][1]
  }
  const byMaster = new Map<number, string>()
  while (byMaster.size < 3) {
    const key = generateKeyPair().publicKey
    const master = await masterOf(keys.queue(key))
    if (!byMaster.has(master)) byMaster.set(master, key)
  }
  const contexts = [...byMaster.values()]
  const dir = t.testdir({ 'front.json': JSON.stringify([{ name: 'front', port: 0 }]) })
  for (const context of contexts) for (const sub of NAMESPACE_DIRS) mkdirSync(join(namespacePath(join(dir, 'db-worker'), context), sub), { recursive: true })
  for (const context of contexts) {
    const slot = Number(await cluster.cluster('KEYSLOT', keys.queue(context)))
    const others = [keys.task(context, randomUUID()), keys.processing(context), keys.lease(context)]
    const slots = await Promise.all(others.map(async (key) => Number(await cluster.cluster('KEYSLOT', key))))
    t.same(slots, [slot, slot, slot], `every key of context ${context.slice(0, 8)}… is in its queue's slot`)
    t.equal(hashSlot(keys.queue(context)), slot, 'the bridge computes the slot the cluster does')
  }
  const args = ['--redis-url', url, '--cluster-secret', SECRET, '--sandbox-processes', '1', '--admin-port', '0']
  const worker = await startCli(t, ['worker', '--db-path', join(dir, 'db-worker'), ...args], /^worker serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const frontUrl = front.events.find((e) => e['circle'] === 'front')!['url'] as string
  const nodeIds = [worker.events.find((e) => /^worker serving/.test(String(e.msg)))!['node_id'] as string, front.events.find((e) => /^serving/.test(String(e.msg)))!['node_id'] as string]
  t.comment(`contexts on masters ${[...byMaster.keys()].join(', ')}; the nodes' wake/reply lists on ${(await Promise.all(nodeIds.map((id) => masterOf(keys.replies(id))))).join(', ')}`)
  while ((await Promise.all(contexts.map((c) => cluster.exists(keys.lease(c))))).some((n) => n === 0)) await sleep(20)

  const caller = generateKeyPair()
  await t.test('plays for every context, 50 pipelined each, answered in order', async (t) => {
    for (const context of contexts) {
      const socket = await openSocket(`${frontUrl}${context}`)
      await authenticate(socket, caller)
      for (let i = 0; i < 50; i++) socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: `[CIRCLE_PUBLIC_KEY, ${i}]` } })
      const answers = []
      for (let i = 0; i < 50; i++) answers.push(await socket.next(30_000))
      t.same(
        answers.map((a) => a.result?.result),
        Array.from({ length: 50 }, (_, i) => [context, i]),
        `context ${context.slice(0, 8)}…`,
      )
      socket.close()
    }
    const stranger = await connectedClient(`${frontUrl}${generateKeyPair().publicKey}`)
    t.teardown(() => stranger.close())
    await stranger.authenticate({ signer: secretKeySigner(caller.secretKey) })
    const refused = await stranger.play('1').then(
      () => 'answered',
      (error: RpcError) => error.code,
    )
    t.equal(refused, 'UNKNOWN_CIRCLE', 'an unserved key is unknown on a cluster too')
  })

  await t.test('re-delivery reads undeclared task keys of the same slot', async (t) => {
    const connection = connectRedis(parseRedisTarget([url]), 'commands')
    t.teardown(() => connection.disconnect())
    await new Promise((resolve) => connection.once('ready', resolve))
    const context = generateKeyPair().publicKey
    const taskId = randomUUID()
    await cluster.hset(keys.task(context, taskId), { status: 'processing', task: '{"stored":true}', owner: 'n.1' })
    // Before it, an entry that is not a task id and names the list itself (WRONGTYPE, were it read).
    await cluster.rpush(keys.processing(context), 'processing', taskId)
    const rows = await connection.circlesRecover(1, keys.processing(context), keys.taskPrefix(context), 1024)
    t.same(rows, [1, [taskId, 'processing', '{"stored":true}', null, null, null, 'n.1']], 'the task read from its undeclared key; the other entry skipped and counted')
    t.same(await cluster.lrange(keys.processing(context), 0, -1), [taskId], 'and taken off the list')
    await cluster.del(keys.task(context, taskId), keys.processing(context))
  })

  t.equal(await front.stop(), 0)
  t.equal(await worker.stop(), 0)
})

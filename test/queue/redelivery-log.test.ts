import t from 'tap'
import { join } from 'node:path'
import { secretKeySigner } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, parseOwnerToken } from '../../src/queue/index.js'
import { cliBuilt, metric, startCli } from '../helpers/cli-node.js'
import { connectedClient } from '../helpers/client.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

// A task handed to an owner that then died is re-delivered by the next owner of its context, and
// the log says so: how many tasks, of which context, left by which node and epoch.

const SECRET = 'redelivery-log-test-secret-0123456789'

t.test('the next owner logs the tasks it re-delivers', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const prefix = testPrefix('redelivery-log')
  const { url: redisUrl, redis } = await testRedis(t, prefix)
  const keys = new QueueKeys(prefix)
  const dir = t.testdir({ 'front.json': JSON.stringify([{ name: 'front', port: 0 }]) })
  const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0']
  const pair = generateKeyPair()
  const context = pair.publicKey
  const workerArgs = ['worker', '--circle-public-key', context, '--db-path', join(dir, 'db'), ...args]
  const first = await startCli(t, workerArgs, /^worker serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const left = parseOwnerToken(await redis.get(keys.lease(context)))!
  t.equal(left.nodeId, first.events.at(-1)!['node_id'], 'the first worker holds the lease')

  // The owner is gone (its lease still names it): a play is handed to it and waits in the
  // context's processing list.
  await first.kill9()
  const client = await connectedClient(`${front.events.find((e) => e['circle'] === 'front')!['url'] as string}${context}`)
  t.teardown(() => client.close())
  await client.authenticate({ signer: secretKeySigner(pair.secretKey) })
  const answer = client.play('save_data("ran", true); "ran"')
  while ((await redis.llen(keys.processing(context))) === 0) await redis.blpop(`${prefix}never`, 0.05)

  const next = await startCli(t, workerArgs, /^worker serving /)
  t.equal((await answer).output, 'ran', 'the next owner runs the task')
  const line = await next.waitFor((e) => /^re-delivering /.test(String(e.msg)))
  t.match(line, {
    msg: `re-delivering 1 task(s) of context ${context} left by node ${left.nodeId}, epoch ${left.epoch}`,
    context,
    tasks: 1,
    from_node: left.nodeId,
    from_epoch: left.epoch,
  })
  t.equal(await metric(next.admin!, 'circles_cross_node_tasks_redelivered_total'), 1, 'the metric counts the same task')
  t.equal(await next.stop(), 0)
  t.equal(await front.stop(), 0)
})

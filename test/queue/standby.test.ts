import t from 'tap'
import { secretKeySigner } from '../../src/client/index.js'
import { connectedClient } from '../helpers/client.js'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, parseOwnerToken } from '../../src/queue/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

// A standby worker on the same database path waits for the path's lock and takes the context
// over when its owner dies (kill -9): a play sent right after the kill is answered by the standby.
// The time from the kill to that answer is the takeover time docs/cluster.md quotes.

const SECRET = 'standby-test-secret-0123456789'

t.test('a standby worker takes over a context when its owner dies', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const prefix = testPrefix('standby')
  const { url: redisUrl, redis } = await testRedis(t, prefix)
  const keys = new QueueKeys(prefix)
  const dir = t.testdir({ 'front.json': JSON.stringify([{ name: 'front', port: 0 }]) })
  const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0']
  // The client is the context's own key: the default policy lets the owner write.
  const pair = generateKeyPair()
  const context = pair.publicKey
  const db = join(dir, 'db')
  const workerArgs = ['worker', '--circle-public-key', context, '--db-path', db, ...args]
  const owner = await startCli(t, workerArgs, /^worker serving /)
  const standby = await startCli(t, [...workerArgs, '--standby'], /^waiting for the database lock/)
  t.match(standby.events.at(-1), { holder_pid: owner.pid }, 'the standby waits on the owner')
  // While it waits, its admin listener says so: 503, status standby, whom it waits for.
  const standbyAdmin = standby.events.at(-1)!['admin'] as string
  const waiting = await fetch(`${standbyAdmin}/healthz`)
  t.equal(waiting.status, 503)
  t.match(await waiting.json(), { status: 'standby', holder_pid: owner.pid, db_path: db, pid: standby.pid })
  t.match(await (await fetch(`${standbyAdmin}/metrics`)).text(), /^circles_standby 1$/m)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const url = `${front.events.find((e) => e['circle'] === 'front')!['url'] as string}${context}`

  const client = await connectedClient(url)
  t.teardown(() => client.close())
  await client.authenticate({ signer: secretKeySigner(pair.secretKey) })
  await client.play('save_data("before", true)')
  const ownerId = owner.events.find((e) => /^worker serving/.test(String(e.msg)))!['node_id']
  t.equal(parseOwnerToken(await redis.get(keys.lease(context)))?.nodeId, ownerId, 'the owner holds the lease')

  const killedAt = performance.now()
  const killed = owner.kill9()
  const answer = await client.play('[load_data("before"), CIRCLE_PUBLIC_KEY]')
  const answeredMs = performance.now() - killedAt
  await killed
  const serving = await standby.waitFor((e) => /^worker serving/.test(String(e.msg)))
  t.same(answer.result, [true, context], 'answered by the standby, over the same data')
  t.equal(parseOwnerToken(await redis.get(keys.lease(context)))?.nodeId, serving['node_id'], 'the standby holds the lease now')
  t.comment(`takeover: ${Math.round(answeredMs)} ms from kill -9 of the owner to the answer of a play sent right after it`)
  t.equal(serving['admin'], standbyAdmin, 'serving, the node keeps the admin port it had as a standby')
  const healthy = await fetch(`${standbyAdmin}/healthz`)
  t.equal(healthy.status, 200)
  t.match(await healthy.json(), { status: 'ok', pid: standby.pid })

  t.equal(await standby.stop(), 0)
  t.equal(await front.stop(), 0)
})

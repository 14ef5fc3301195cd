import t from 'tap'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { secretKeySigner, type CirclesClient } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, encodeTask, parseOwnerToken, signTask, type QueuedTask } from '../../src/queue/index.js'
import { cliBuilt, metric, startCli, type CliNode } from '../helpers/cli-node.js'
import { connectedClient } from '../helpers/client.js'
import { startRedis } from '../helpers/redis-server.js'

// What a Redis writer without the cluster secret leaves in a context's lists — ids that are not
// task ids, one naming the processing list itself, keys of the wrong type, entries over the size
// cap — is skipped and counted, and the legitimate tasks beside it run. A task whose script had a
// lone surrogate swapped for another is refused. Two launched nodes and a private redis-server.

const SECRET = 'poison-test-secret-0123456789'
const HIGH = '\ud800'
const LOW = '\udfff'

t.test('poisoned entries in Redis are skipped and counted; the tasks beside them run', { timeout: 120_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const keys = new QueueKeys('rhailib:')
  const dir = t.testdir({
    'owner.json': JSON.stringify([{ name: 'owner', port: 0, policy: { run: 'authenticated', write: 'authenticated' } }]),
    'front.json': JSON.stringify([{ name: 'front', port: 0 }]),
  })
  // A deadline a loaded machine meets (what is not taken is answered TASK_EXPIRED after it).
  const args = ['--redis-url', server.url, '--cluster-secret', SECRET, '--sandbox-processes', '1', '--admin-port', '0', '--queue-allowance-ms', '20000']
  const ownerArgs = ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db-owner'), ...args]
  let owner = await startCli(t, ownerArgs, /^serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const circle = (node: CliNode, name: string) => node.events.find((e) => e['circle'] === name) as { url: string; public_key: string }
  const context = circle(owner, 'owner').public_key
  const frontId = front.events.find((e) => /^serving/.test(String(e.msg)))!['node_id'] as string
  const top = t
  const caller = generateKeyPair()
  const client = async (url: string): Promise<CirclesClient> => {
    const c = await connectedClient(url)
    t.teardown(() => c.close())
    await c.authenticate({ signer: secretKeySigner(caller.secretKey) })
    return c
  }
  const remote = await client(`${circle(front, 'front').url}${context}`)
  const load = async (name: string) => (await (await client(circle(owner, 'owner').url)).play(`load_data(${JSON.stringify(name)})`)).result
  const poisoned = () => metric(owner.admin!, 'circles_cross_node_poisoned_total')
  const refused = () => metric(owner.admin!, 'circles_cross_node_refused_total')
  const lease = async () => parseOwnerToken(await redis.get(keys.lease(context)))!
  /** A task as a gateway stores it, signed with the cluster secret. */
  const signed = (script: string): QueuedTask & { entry: string } => {
    const task = { taskId: randomUUID(), context, caller: caller.publicKey, script, timeoutMs: undefined, replyTo: frontId, deadline: Date.now() + 60_000, origin: '' }
    return { ...task, entry: encodeTask(task, signTask(SECRET, task)) }
  }

  await t.test('a lone surrogate swapped for another: the MAC no longer verifies', async (t) => {
    t.equal((await remote.play(`'${HIGH}'.charCodeAt(0)`)).result, 0xd800, 'a script with a lone surrogate runs across nodes as it does locally')
    const before = await metric(owner.admin!, 'circles_cross_node_tasks_received_total')
    const refusedBefore = await refused()
    const task = signed(`save_data('swap', '${HIGH}'.charCodeAt(0))`)
    const swapped = task.entry.replace('\\ud800', '\\udfff')
    t.not(swapped, task.entry)
    t.equal((JSON.parse(swapped) as { r: string[] }).r[1], `save_data('swap', '${LOW}'.charCodeAt(0))`)
    const { nodeId, epoch } = await lease()
    await redis.rpush(keys.wake(nodeId, epoch), swapped)
    while ((await metric(owner.admin!, 'circles_cross_node_tasks_received_total')) === before) await redis.blpop('never', 0.05)
    t.equal(await refused(), refusedBefore + 1, 'refused and counted')
    t.equal(await load('swap'), null, 'and it did not run')
  })

  await t.test('a take: poisoned entries ahead of a legitimate task in the queue', async (t) => {
    const wrongType = randomUUID()
    await redis.set(keys.task(context, wrongType), 'not a hash', 'PX', 120_000)
    // Nobody is woken by these: the play below finds the queue not empty, appends to it and wakes the owner.
    await redis.rpush(keys.queue(context), 'processing', 'x}:y', wrongType, 'y'.repeat(5 * 1024 * 1024))
    await redis.pexpire(keys.queue(context), 120_000)
    t.equal((await remote.play('[CIRCLE_PUBLIC_KEY, 6 * 7]')).output, JSON.stringify([context, 42]), 'the legitimate task was taken and run')
    t.equal(await poisoned(), 4, 'the four entries before it were skipped and counted')
    t.equal(await redis.llen(keys.queue(context)), 0, 'and the queue is empty')
    t.ok(owner.events.some((e) => e['reason'] === 'poisoned'), 'logged')
  })

  await t.test('a recovery: poisoned entries beside a task a previous owner left', async (t) => {
    t.equal(await owner.stop(), 0)
    const left = signed("save_data('recovered', true)")
    await redis.hset(keys.task(context, left.taskId), { task: left.entry, status: 'processing', deadline: String(left.deadline), reply_to: frontId, owner: 'fedcba9876543210.1.k' })
    await redis.pexpire(keys.task(context, left.taskId), 120_000)
    await redis.rpush(keys.processing(context), 'processing', left.taskId, 'z'.repeat(100))
    await redis.pexpire(keys.processing(context), 120_000)
    // Started for the whole test, not this subtest (whose teardown would kill it).
    owner = await startCli(top, ownerArgs, /^serving /)
    // The recovery's outcome is logged before the tasks it found are handed to the context.
    await owner.waitFor((e) => e['reason'] === 'poisoned' || /could not take tasks/.test(String(e.msg)))
    t.equal(await load('recovered'), true, 'the task left behind was re-delivered and ran')
    t.equal(await poisoned(), 2, 'the two entries beside it were skipped and counted')
  })

  await t.test('a wake entry over the size cap is refused before it is parsed', async (t) => {
    const before = await refused()
    const { nodeId, epoch } = await lease()
    await redis.rpush(keys.wake(nodeId, epoch), `{"c":"${context}","r":["${'w'.repeat(5 * 1024 * 1024)}"]}`)
    while ((await refused()) === before) await redis.blpop('never', 0.05)
    t.ok(owner.events.some((e) => e['reason'] === 'wake' && typeof e['length'] === 'number'), 'logged with its size')
    t.equal((await remote.play('1 + 1')).result, 2, 'and the node serves on')
  })

  t.equal(await front.stop(), 0)
  t.equal(await owner.stop(), 0)
})

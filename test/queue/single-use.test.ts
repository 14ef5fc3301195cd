import t from 'tap'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { secretKeySigner } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys, encodeTask, parseOwnerToken, peekTask, signTask } from '../../src/queue/index.js'
import { cliBuilt, metric, startCli, type CliNode } from '../helpers/cli-node.js'
import { connectedClient } from '../helpers/client.js'
import { startRedis } from '../helpers/redis-server.js'

// A Redis writer without the cluster secret copies a task that already ran — its stored JSON, MAC
// and all, as MONITOR shows it go by — and hands it back to the owner, through the wake list and
// through the queue with its record reset. The task increments a counter: the disk says whether a
// copy ran. Two launched nodes and a private redis-server; the test signs, as a gateway does, the
// tasks it hands over after the copies, to know when the owner has handled them.

const SECRET = 'single-use-test-secret-0123456789'
// No double quote or backslash: MONITOR shows them escaped, and the copy must be the stored text.
const COUNT = "const n = (load_data('n') ?? 0) + 1; save_data('n', n); n"

t.test('an owner runs a task once: copies handed back through Redis are refused, logged and counted', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const keys = new QueueKeys('rhailib:')
  const dir = t.testdir({
    'owner.json': JSON.stringify([{ name: 'count', port: 0, policy: { run: 'authenticated', write: 'authenticated' } }]),
    'front.json': JSON.stringify([{ name: 'front', port: 0 }]),
  })
  const args = ['--redis-url', server.url, '--cluster-secret', SECRET, '--sandbox-processes', '1', '--admin-port', '0']
  const owner = await startCli(t, ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db-owner'), ...args], /^serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const circle = (node: CliNode, name: string) => node.events.find((e) => e['circle'] === name) as { url: string; public_key: string }
  const context = circle(owner, 'count').public_key
  const caller = generateKeyPair()

  // What a Redis reader sees: the task as the gateway stores it.
  const monitor = await redis.monitor()
  t.teardown(() => monitor.disconnect())
  const captured = new Promise<string>((resolve) => {
    monitor.on('monitor', (_time: string, argv: string[]) => {
      const entry = argv.find((a) => a.startsWith('{"c":') && a.includes("save_data('n'"))
      if (entry !== undefined) resolve(entry)
    })
  })
  const client = await connectedClient(`${circle(front, 'front').url}${context}`)
  t.teardown(() => client.close())
  await client.authenticate({ signer: secretKeySigner(caller.secretKey) })
  t.equal((await client.play(COUNT)).result, 1, 'the task ran once, through the gateway')
  const entry = await captured
  monitor.disconnect()
  const { taskId } = peekTask(entry)
  const deadline = (JSON.parse(entry) as { r: unknown[] }).r[5] as number
  t.ok(deadline > Date.now() + 5_000, 'the copies below are handed back well before its deadline')

  // The counter as the owner's disk has it (a local play goes through the context's mailbox
  // after every task handed to it before).
  const local = await connectedClient(circle(owner, 'count').url)
  t.teardown(() => local.close())
  await local.authenticate({ signer: secretKeySigner(caller.secretKey) })
  const counter = async () => (await local.play("load_data('n')")).result
  const lease = parseOwnerToken(await redis.get(keys.lease(context)))!
  const repeats = () => metric(owner.admin!, 'circles_cross_node_repeats_refused_total')
  let logged = 0
  const repeatLogged = (n: number) => owner.waitFor((e) => e['reason'] === 'repeat' && e['task_id'] === taskId && ++logged === n)
  // A new task, signed as a gateway signs one, handed over after the copies: once it has run,
  // every copy before it has been handled (the owner handles what it is handed in order, and a
  // context runs its tasks in order).
  const frontId = front.events.find((e) => /^serving/.test(String(e.msg)))!['node_id'] as string
  const marker = (name: string) => {
    const task = { taskId: randomUUID(), context, caller: caller.publicKey, script: `save_data('${name}', true)`, timeoutMs: undefined, replyTo: frontId, deadline: Date.now() + 60_000, origin: '' }
    return { ...task, entry: encodeTask(task, signTask(SECRET, task)) }
  }
  const ran = async (name: string) => {
    while ((await local.play(`load_data('${name}')`)).result !== true) await redis.blpop('never', 0.05)
  }

  await t.test('three copies pushed onto the wake list, as the enqueue script hands tasks over', async (t) => {
    const after = marker('after-wake')
    await redis.rpush(keys.wake(lease.nodeId, lease.epoch), entry, entry, entry, after.entry)
    await ran('after-wake')
    t.equal(await counter(), 1, 'no copy ran')
    t.equal(await repeats(), 3, 'each was refused and counted')
    await repeatLogged(3)
    t.pass('and logged, with its task id')
  })

  await t.test('the id pushed back onto the queue, its record reset to pending', async (t) => {
    const after = marker('after-queue')
    await redis.hset(keys.task(context, taskId), { task: entry, status: 'pending', deadline: String(deadline), reply_to: frontId, owner: await redis.get(keys.lease(context)) })
    await redis.hset(keys.task(context, after.taskId), { task: after.entry, status: 'pending', deadline: String(after.deadline), reply_to: frontId })
    for (const id of [taskId, after.taskId]) await redis.pexpire(keys.task(context, id), 120_000)
    await redis.rpush(keys.queue(context), taskId, after.taskId)
    await redis.rpush(keys.wake(lease.nodeId, lease.epoch), context)
    await ran('after-queue')
    t.equal(await counter(), 1, 'it did not run')
    t.equal(await repeats(), 4, 'refused and counted')
    await repeatLogged(4)
    // A refused copy leaves the processing list; its record stays as the writer left it.
    while ((await redis.llen(keys.processing(context))) > 0) await redis.blpop('never', 0.05)
    t.equal(await redis.hget(keys.task(context, taskId), 'status'), 'processing', 'no completion was written for it: its record is as the take left it')
  })

  t.equal(await front.stop(), 0)
  t.equal(await owner.stop(), 0)
})

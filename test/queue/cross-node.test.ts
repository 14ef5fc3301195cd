import t from 'tap'
import { secretKeySigner } from '../../src/client/index.js'
import { connectedClient } from '../helpers/client.js'
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { RpcError } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { writePolicy } from '../../src/policy/index.js'
import { QueueKeys, encodeTask, parseOwnerToken } from '../../src/queue/index.js'
import { NAMESPACE_DIRS, namespacePath } from '../../src/storage/index.js'
import { cliBuilt, metric, startCli, type CliNode } from '../helpers/cli-node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

// Two node processes joined through the test Redis (keys under a prefix of this test, deleted
// at teardown), then workers: what a client on node 1 sees of contexts other processes host.

const SECRET = 'cross-node-test-secret-0123456789'

function redisArgs(redisUrl: string, prefix: string): string[] {
  return ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0']
}

async function errorOf(play: Promise<unknown>): Promise<{ code: string; message: string; data: Record<string, unknown> }> {
  try {
    await play
  } catch (error) {
    if (error instanceof RpcError) return { code: error.code ?? '', message: error.message, data: (error.data ?? {}) as Record<string, unknown> }
    throw error
  }
  throw new Error('the play succeeded')
}

/** A database path holding the namespaces of `keys` (what a worker adopts), with optional policies. */
async function databaseWith(dir: string, contexts: { key: string; policy?: unknown }[]): Promise<string> {
  for (const { key, policy } of contexts) {
    const root = namespacePath(dir, key)
    for (const sub of NAMESPACE_DIRS) mkdirSync(join(root, sub), { recursive: true })
    if (policy !== undefined) await writePolicy(root, policy as never)
  }
  return dir
}

t.test('cross-node plays through Redis', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const prefix = testPrefix('cross')
  const { url: redisUrl, redis } = await testRedis(t, prefix)
  const keys = new QueueKeys(prefix)
  const dir = t.testdir({
    'init.js': 'save_data("profile", { name: "Owner" }); 1',
    'owner.json': JSON.stringify([
      { name: 'owner', port: 0, script_path: 'init.js' },
      { name: 'open', port: 0, policy: { run: 'authenticated', write: 'authenticated' } },
    ]),
    'front.json': JSON.stringify([{ name: 'front', port: 0 }]),
  })
  const node2 = await startCli(t, ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db2'), ...redisArgs(redisUrl, prefix)], /^serving /)
  const node1 = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db1'), ...redisArgs(redisUrl, prefix)], /^serving /)
  const circle = (node: CliNode, name: string) => node.events.find((e) => e['circle'] === name) as { url: string; public_key: string }
  const owner = circle(node2, 'owner')
  const open = circle(node2, 'open')
  const front = circle(node1, 'front')
  const via1 = (key: string) => `${front.url}${key}`

  const caller = generateKeyPair()
  const client = await connectedClient(via1(owner.public_key))
  t.teardown(() => client.close())
  await client.authenticate({ signer: secretKeySigner(caller.secretKey) })

  await t.test("the gateway's sign-in message names the gateway as dialled and the other node's context", async (t) => {
    const socket = await openSocket(via1(owner.public_key))
    t.teardown(() => socket.close())
    const { result } = await socket.call('fetch_nonce', { pubkey: caller.publicKey })
    const lines = (result.nonce as string).split('\n')
    t.equal(lines[0], `${new URL(front.url).host} wants you to sign in with your Ethereum account:`)
    t.equal(lines[3], `Sign in to the Circles context ${owner.public_key}.`)
    t.equal(lines[5], `URI: ${via1(owner.public_key)}`)
    t.equal(client.publicKey, caller.publicKey, 'and the client library, checking it, signed in through the gateway')
  })

  await t.test("the owner's context: its key, the caller's key, its data", async (t) => {
    const played = await client.play('[CIRCLE_PUBLIC_KEY, CALLER_PUBLIC_KEY, load_data("profile")]')
    t.same(played.result, [owner.public_key, caller.publicKey, { name: 'Owner' }])
  })

  await t.test("its policy refuses the caller's write, and its error codes come back", async (t) => {
    t.match(await errorOf(client.play('save_data("x", 1)')), { code: 'FORBIDDEN', message: /policy/ })
    t.match(await errorOf(client.play('throw new Error("boom")')), { code: 'SCRIPT_ERROR', message: /boom/ })
    const timeout = await errorOf(client.play('while (true) {}', { scriptTimeoutMs: 150 }))
    t.equal(timeout.code, 'SCRIPT_TIMEOUT', 'timeout_ms travels with the task')
    const timings = timeout.data['timings'] as { run_ms: number }
    t.ok(timings.run_ms >= 150 && timings.run_ms < 1000, `ran ${timings.run_ms} ms under a 150 ms timeout_ms (the context allows 1,000)`)
  })

  await t.test('the answer has the shape of a local run', async (t) => {
    const remote = await openSocket(via1(owner.public_key))
    const local = await openSocket(owner.url)
    t.teardown(() => {
      remote.close()
      local.close()
    })
    await authenticate(remote, caller)
    await authenticate(local, caller)
    const a = await remote.call('play', { script: 'print("hi"); ({ n: 1 })' }, 7)
    const b = await local.call('play', { script: 'print("hi"); ({ n: 1 })' }, 7)
    t.same(Object.keys(a.result).sort(), Object.keys(b.result).sort())
    t.same(Object.keys(a.result.timings).sort(), ['calls_ms', 'cpu_ms', 'queued_ms', 'run_ms'])
    t.match(a.result, { output: '{"n":1}', result: { n: 1 }, logs: ['hi'], task_id: /^[0-9a-f-]{36}$/ })
    t.equal(a.id, 7)
    const e1 = await remote.call('play', { script: 'throw new Error("x")' })
    const e2 = await local.call('play', { script: 'throw new Error("x")' })
    t.same(Object.keys(e1.error.data).sort(), Object.keys(e2.error.data).sort())
    t.equal(e1.error.code, e2.error.code)
  })

  await t.test('200 pipelined plays of one connection run and answer in order', async (t) => {
    const socket = await openSocket(via1(open.public_key))
    t.teardown(() => socket.close())
    await authenticate(socket, caller)
    const N = 200
    for (let i = 0; i < N; i++) {
      socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: `const s = load_data("seq") ?? []; s.push(${i}); save_data("seq", s); s.length` } })
    }
    const answers = []
    for (let i = 0; i < N; i++) answers.push(await socket.next(30_000))
    t.same(
      answers.map((a) => a.id),
      Array.from({ length: N }, (_, i) => i),
      'answered in order',
    )
    t.same(
      answers.map((a) => a.result?.result),
      Array.from({ length: N }, (_, i) => i + 1),
      'each saw every earlier one',
    )
    const check = await connectedClient(open.url)
    t.teardown(() => check.close())
    await check.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.same((await check.play('load_data("seq")')).result, Array.from({ length: N }, (_, i) => i), 'stored in order, each once')
  })

  await t.test('a key no node serves answers UNKNOWN_CIRCLE at once', async (t) => {
    const stranger = await connectedClient(via1(generateKeyPair().publicKey))
    t.teardown(() => stranger.close())
    await stranger.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.match(await errorOf(stranger.play('1')), { code: 'UNKNOWN_CIRCLE' })
  })

  await t.test('the admin listener says the node is clustered, /info does not; the counters moved', async (t) => {
    const info = (await (await fetch(`${front.url.replace(/^ws/, 'http')}info`)).json()) as Record<string, unknown>
    t.equal(info['cluster'], undefined, 'a stranger is not told the node id or whether Redis is reachable')
    const health = (await (await fetch(`${node1.admin!}/healthz`)).json()) as { cluster: Record<string, unknown> }
    t.match(health.cluster, { clustered: true, node_id: /^[0-9a-f]{16}$/, redis: 'connected' })
    t.ok((await metric(node1.admin!, 'circles_cross_node_tasks_sent_total')) >= 200)
    t.ok((await metric(node2.admin!, 'circles_cross_node_tasks_received_total')) >= 200)
    t.equal(await metric(node1.admin!, 'circles_redis_connected'), 1)
  })

  await t.test('workers: a single-peer worker serves its key; a multi-peer worker serves two', async (t) => {
    const single = generateKeyPair().publicKey
    const a = generateKeyPair().publicKey
    const b = generateKeyPair().publicKey
    const db3 = await databaseWith(join(dir, 'db3'), [{ key: single }, { key: generateKeyPair().publicKey }])
    const db4 = await databaseWith(join(dir, 'db4'), [{ key: a, policy: { run: 'authenticated', write: 'authenticated' } }, { key: b }])
    const w1 = await startCli(t, ['worker', '--circle-public-key', single, '--db-path', db3, ...redisArgs(redisUrl, prefix)], /^worker serving /)
    const w2 = await startCli(t, ['worker', '--db-path', db4, ...redisArgs(redisUrl, prefix)], /^worker serving /)
    t.match(w1.events.find((e) => /^worker serving/.test(String(e.msg))), { single, contexts: 1 })
    t.match(w2.events.find((e) => /^worker serving/.test(String(e.msg))), { contexts: 2 })
    for (const key of [single, a, b]) {
      const c = await connectedClient(via1(key))
      await c.authenticate({ signer: secretKeySigner(caller.secretKey) })
      t.equal((await c.play('CIRCLE_PUBLIC_KEY')).output, key, `${key.slice(0, 8)}… answers from its worker`)
      if (key === a) {
        await c.play('save_data("note", "kept by the worker")')
        t.equal((await c.play('load_data("note")')).output, 'kept by the worker')
      }
      c.close()
    }
    t.equal(parseOwnerToken(await redis.get(keys.lease(single)))?.nodeId, w1.events.find((e) => /^worker serving/.test(String(e.msg)))!['node_id'], 'the lease names the worker')
    t.equal(await w1.stop(), 0)
    t.equal(await redis.get(keys.lease(single)), null, 'a clean stop lets go of the lease')
    const gone = await connectedClient(via1(single))
    await gone.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.match(await errorOf(gone.play('1')), { code: 'UNKNOWN_CIRCLE' }, 'so its key is unknown again at once')
    gone.close()
    t.equal(await w2.stop(), 0)
  })

  await t.test('a task or a reply with a bad MAC is refused and counted', async (t) => {
    /**
     * How a task's row settles: `refused` once the owner deleted it unrun (a refused task leaves no
     * record), `ran` once it holds a completion record — so a broken check fails here by name.
     */
    const settled = async (key: string): Promise<'refused' | 'ran'> => {
      for (;;) {
        const status = await redis.hget(key, 'status')
        if (status === 'completed' || status === 'error') return 'ran'
        if (status === null) return 'refused'
        await redis.blpop(`${prefix}never`, 0.05)
      }
    }
    const ownerToken = parseOwnerToken(await redis.get(keys.lease(open.public_key)))!
    const frontNode = (await (await fetch(`${node1.admin!}/healthz`)).json() as { cluster: { node_id: string } }).cluster.node_id
    const taskId = randomUUID()
    const before2 = await metric(node2.admin!, 'circles_cross_node_refused_total')
    const deadline = Date.now() + 60_000
    const forged = { taskId, context: open.public_key, caller: caller.publicKey, script: 'save_data("forged", true)', timeoutMs: undefined, replyTo: frontNode, deadline, origin: '' }
    await redis.hset(keys.task(open.public_key, taskId), { task: encodeTask(forged, 'AAAA'), status: 'pending', deadline: String(deadline) })
    await redis.pexpire(keys.task(open.public_key, taskId), 120_000)
    await redis.rpush(keys.queue(open.public_key), taskId)
    // A forged task in the queue, and the owner woken to take it.
    await redis.rpush(keys.wake(ownerToken.nodeId, ownerToken.epoch), open.public_key)
    // The row settles either way — `error` refused, `completed` run — so a broken check fails here by name.
    t.equal(await settled(keys.task(open.public_key, taskId)), 'refused', 'task-MAC check: the forged task was refused, not run')
    t.equal(await metric(node2.admin!, 'circles_cross_node_refused_total'), before2 + 1, 'the owner refused the forged task')
    // The refusal takes it off the processing list, unanswered.
    while ((await redis.llen(keys.processing(open.public_key))) > 0) await redis.blpop(`${prefix}never`, 0.05)
    t.same(await redis.hgetall(keys.task(open.public_key, taskId)), {}, 'no answer was recorded: a refused task leaves no record')
    const check = await connectedClient(open.url)
    await check.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.equal((await check.play('load_data("forged")')).result, null, 'and it did not run')
    check.close()

    // The same forged task handed straight to the owner, as the enqueue script hands tasks over.
    const handed = { ...forged, taskId: randomUUID(), script: 'save_data("handed", true)' }
    // Its row, as the enqueue script writes it for a hand-off.
    await redis.hset(keys.task(open.public_key, handed.taskId), { task: encodeTask(handed, 'AAAA'), status: 'processing', deadline: String(deadline) })
    await redis.pexpire(keys.task(open.public_key, handed.taskId), 120_000)
    await redis.rpush(keys.wake(ownerToken.nodeId, ownerToken.epoch), encodeTask(handed, 'AAAA'))
    t.equal(await settled(keys.task(open.public_key, handed.taskId)), 'refused', 'task-MAC check: the forged hand-off was refused, not run')
    t.equal(await metric(node2.admin!, 'circles_cross_node_refused_total'), before2 + 2, 'the owner refused the forged hand-off')
    const check2 = await connectedClient(open.url)
    await check2.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.equal((await check2.play('load_data("handed")')).result, null, 'and it did not run')
    check2.close()

    const before1 = await metric(node1.admin!, 'circles_cross_node_refused_total')
    const behind = await connectedClient(via1(open.public_key))
    await behind.authenticate({ signer: secretKeySigner(caller.secretKey) })
    await redis.rpush(keys.replies(frontNode), `${open.public_key} ${randomUUID()} forged.{"t":"run","c":null,"m":"","b":"\\"output\\":\\"1\\",\\"logs\\":[]"}`, 'not a reply')
    // A genuine reply comes down the same list behind the forged ones (the gateway reads it in
    // order): once its play is answered, the forged replies have been read.
    t.equal((await behind.play('"behind"')).output, 'behind', 'a genuine reply behind the forged ones was delivered')
    behind.close()
    t.equal(await metric(node1.admin!, 'circles_cross_node_refused_total'), before1 + 2, 'reply-MAC check: the gateway refused both forged replies')
    t.ok(node1.events.some((e) => e['code'] === 'QUEUE_MESSAGE_INVALID'), 'and logged them with their code')
  })

  t.equal(await node1.stop(), 0)
  t.equal(await node2.stop(), 0)
})

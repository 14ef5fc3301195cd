import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { QueueKeys } from '../../src/queue/index.js'
import { decodeDocumentName } from '../../src/storage/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { cliBuilt, metric, startCli } from '../helpers/cli-node.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { keysUnder, testPrefix, testRedis } from '../helpers/redis-server.js'

// kill -9 of the node that owns a context while 200 cross-node tasks for it are in flight, then a
// restart on the same database path within the tasks' deadline. Each task increments a document
// of its own, so the disk says how often each ran. Then kill -9 of the gateway node: every key
// the queue left behind expires.

const SECRET = 'owner-crash-test-secret-0123456789'
const TASKS = 200
const SOCKETS = 4
/** The owner is killed once this many answers have come back, whatever the timing. */
const KILL_AFTER_ANSWERS = 40

const script = (i: number) => `const n = (load_data("t${i}") ?? 0) + 1; save_data("t${i}", n); n`

t.test('kill -9 of the owner with 200 tasks in flight, restart within the deadline', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const prefix = testPrefix('owner-crash')
  const { url: redisUrl, redis } = await testRedis(t, prefix)
  const keys = new QueueKeys(prefix)
  const dir = t.testdir({
    'owner.json': JSON.stringify([{ name: 'count', port: 0, policy: { run: 'authenticated', write: 'authenticated' } }]),
    'front.json': JSON.stringify([{ name: 'front', port: 0 }]),
  })
  // A deadline (1 s run + 20 s allowance) the restart fits in, with room for a busy machine.
  const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0', '--queue-allowance-ms', '20000']
  const ownerArgs = ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db-owner'), ...args]
  const owner = await startCli(t, ownerArgs, /^serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const context = owner.events.find((e) => e['circle'] === 'count')!['public_key'] as string
  const frontUrl = front.events.find((e) => e['circle'] === 'front')!['url'] as string

  const caller = generateKeyPair()
  const sockets: RawSocket[] = []
  for (let s = 0; s < SOCKETS; s++) {
    const socket = await openSocket(`${frontUrl}${context}`)
    await authenticate(socket, caller)
    sockets.push(socket)
  }
  t.teardown(() => sockets.forEach((s) => s.close()))

  // Answers by task; the ones that came before the kill are marked.
  const answers = new Map<number, { result?: number; code?: string; beforeKill: boolean }>()
  let killing: Promise<void> | undefined
  let startKill!: (kill: Promise<void>) => void
  const killStarted = new Promise<Promise<void>>((resolve) => (startKill = resolve))
  const collected = sockets.map(async (socket, s) => {
    const mine = Array.from({ length: TASKS / SOCKETS }, (_, k) => k * SOCKETS + s)
    for (const i of mine) socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: script(i) } })
    for (let k = 0; k < mine.length; k++) {
      const answer = await socket.next(60_000)
      answers.set(answer.id, { result: answer.result?.result, code: answer.error?.data?.code, beforeKill: killing === undefined })
      if (answers.size === KILL_AFTER_ANSWERS && killing === undefined) startKill((killing = owner.kill9()))
    }
  })
  // Wait for the kill (the node and its sandbox host gone: the database lock is free), then
  // restart the owner on the same path.
  await (await killStarted)
  const answeredBeforeKill = [...answers.values()].filter((a) => a.beforeKill).length
  const leftInRedis = (await redis.llen(keys.processing(context))) + (await redis.llen(keys.queue(context)))
  t.comment(`killed with ${answeredBeforeKill} answered, ${leftInRedis} taken or queued in Redis`)
  t.ok(leftInRedis > 0, 'tasks were left in flight by the kill')
  const restarted = await startCli(t, ownerArgs, /^serving /)
  await Promise.all(collected)

  t.equal(answers.size, TASKS, 'every task answered')
  const failed = [...answers].filter(([, a]) => a.code !== undefined)
  t.same(failed, [], 'every task answered with its result (none expired, none failed)')
  t.ok((await metric(restarted.admin!, 'circles_cross_node_tasks_redelivered_total')) > 0, 'the restarted owner took over the tasks the kill left')

  // The disk: one whole JSON number per task, equal to the answer its caller got.
  const dataDir = join(dir, 'db-owner', context, 'data')
  const counts = new Map<number, number>()
  const torn: string[] = []
  for (const file of readdirSync(dataDir).filter((f) => !f.startsWith('.'))) {
    const name = decodeDocumentName(file)!
    try {
      counts.set(Number(name.slice(1)), JSON.parse(readFileSync(join(dataDir, file), 'utf8')) as number)
    } catch {
      torn.push(name)
    }
  }
  t.same(torn, [], 'no document is torn')
  let twice = 0
  for (let i = 0; i < TASKS; i++) {
    const answer = answers.get(i)!
    const count = counts.get(i)
    if (answer.beforeKill && count !== 1) t.fail(`t${i} was answered before the kill (completed) yet ran ${count} times`)
    if (count !== answer.result) t.fail(`t${i}: ran ${count} times, its caller was answered ${answer.result}`)
    if (count === 2) twice++
    else if (count !== 1) t.fail(`t${i} ran ${count} times`)
  }
  t.comment(`${twice} task(s) cut off mid-run by the kill ran again (at-least-once)`)
  const runsInFlight = answers.size - answeredBeforeKill
  t.ok(twice < runsInFlight, 'only runs cut off by the kill ran twice; the rest ran once')
  t.equal(await redis.llen(keys.processing(context)), 0, 'nothing left in the processing list')

  await t.test('kill -9 of the gateway node: every key the queue left behind expires', async (t) => {
    const socket = await openSocket(`${frontUrl}${context}`)
    await authenticate(socket, caller)
    // The owner is held (SIGSTOP) until the gateway is dead, so that it answers after: were it to
    // answer first, the gateway would have read every reply and left no reply list behind.
    process.kill(restarted.pid, 'SIGSTOP')
    for (let i = 0; i < 50; i++) socket.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: script(1000 + i) } })
    while ((await redis.llen(keys.processing(context))) < 50) await redis.blpop(`${prefix}never`, 0.05)
    await front.kill9()
    process.kill(restarted.pid, 'SIGCONT')
    // The owner finishes them all and pushes replies nobody reads.
    while ((await redis.llen(keys.processing(context))) + (await redis.llen(keys.queue(context))) > 0) await redis.blpop(`${prefix}never`, 0.05)
    const all = await keysUnder(redis, prefix)
    const withoutExpiry: string[] = []
    for (const key of all) if ((await redis.pttl(key)) < 0) withoutExpiry.push(key)
    t.ok(all.some((k) => k.includes(':replies')), 'the dead gateway has an unread reply list')
    t.ok(all.some((k) => k.startsWith(keys.task(context, '')) && /:[0-9a-f-]{36}$/.test(k)), 'and completion records are there, kept for the dead gateway until their deadlines')
    t.same(withoutExpiry, [], `none of the ${all.length} keys under the prefix lacks an expiry`)
  })

  t.equal(await restarted.stop(), 0)
})

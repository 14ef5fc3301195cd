import t from 'tap'
import { secretKeySigner } from '../../src/client/index.js'
import { connectedClient } from '../helpers/client.js'
import { join } from 'node:path'
import { setImmediate as turn } from 'node:timers/promises'
import { RpcError } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { cliBuilt, metric, startCli } from '../helpers/cli-node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { startRedis } from '../helpers/redis-server.js'

// Redis stopped mid-run (a private redis-server with an append-only file), then started again on
// the same data directory: local plays never fail, cross-node plays fail fast with UNAVAILABLE,
// /healthz says degraded; after the restart the bridges reconnect by themselves, the tasks
// queued before the outage are answered, and new cross-node plays work.

const SECRET = 'redis-outage-test-secret-0123456789'

async function health(http: string): Promise<{ status: number; body: { status: string; failing?: string[] } }> {
  const res = await fetch(`${http}healthz`)
  return { status: res.status, body: (await res.json()) as { status: string; failing?: string[] } }
}

t.test('Redis stopped mid-run and started again', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const redis = await startRedis(t, ['--appendonly', 'yes', '--save', ''])
  const dir = t.testdir({
    // A context whose runs may take 5 s: one slow run keeps the others queued behind it.
    'owner.json': JSON.stringify([{ name: 'owner', port: 0, policy: { run: 'authenticated', write: 'authenticated' }, limits: { timeout_ms: 5000, cpu_ms: 5000 } }]),
    'front.json': JSON.stringify([{ name: 'front', port: 0, policy: { run: 'authenticated', write: 'authenticated' } }]),
  })
  const args = ['--redis-url', redis.url, '--cluster-secret', SECRET, '--sandbox-processes', '1', '--admin-port', '0', '--queue-allowance-ms', '30000']
  const owner = await startCli(t, ['launch', '--config', join(dir, 'owner.json'), '--db-path', join(dir, 'db-owner'), ...args], /^serving /)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const context = owner.events.find((e) => e['circle'] === 'owner')!['public_key'] as string
  const frontUrl = front.events.find((e) => e['circle'] === 'front')!['url'] as string
  const frontHttp = frontUrl.replace(/^ws/, 'http')
  const caller = generateKeyPair()

  const local = await connectedClient(frontUrl)
  t.teardown(() => local.close())
  await local.authenticate({ signer: secretKeySigner(caller.secretKey) })
  const remote = await connectedClient(`${frontUrl}${context}`)
  t.teardown(() => remote.close())
  await remote.authenticate({ signer: secretKeySigner(caller.secretKey) })
  t.equal((await remote.play('CIRCLE_PUBLIC_KEY')).output, context, 'cross-node plays work before the outage')

  // Queued before the outage: a slow run, then 20 appends waiting behind it in the owner's mailbox.
  const queued = await openSocket(`${frontUrl}${context}`)
  t.teardown(() => queued.close())
  await authenticate(queued, caller)
  queued.send({ jsonrpc: '2.0', id: 'slow', method: 'play', params: { script: 'save_data("slow", "started"); const end = Date.now() + 1500; while (Date.now() < end) {} "slow done"' } })
  for (let i = 0; i < 20; i++) queued.send({ jsonrpc: '2.0', id: i, method: 'play', params: { script: `const s = load_data("seq") ?? []; s.push(${i}); save_data("seq", s); s.length` } })
  // The slow run has started on the owner (its first write is on disk) when Redis stops.
  const check = await connectedClient(owner.events.find((e) => e['circle'] === 'owner')!['url'] as string)
  t.teardown(() => check.close())
  await check.authenticate({ signer: secretKeySigner(caller.secretKey) })
  while ((await check.play('load_data("slow")')).output !== 'started') await turn()
  await redis.stop('shutdown')

  // While Redis is away.
  while ((await health(frontHttp)).body.status !== 'degraded') await turn()
  t.same(await health(frontHttp), { status: 200, body: { status: 'degraded', failing: ['redis'] } }, '/healthz: 200 degraded')
  const localResults = []
  for (let i = 0; i < 20; i++) localResults.push((await local.play(`save_data("local", ${i}); ${i}`)).result)
  t.same(localResults, Array.from({ length: 20 }, (_, i) => i), 'local plays (writes included) never fail during the outage')
  try {
    await remote.play('1')
    t.fail('a cross-node play succeeded while Redis was away')
  } catch (error) {
    t.match(error, RpcError)
    t.equal((error as RpcError).code, 'UNAVAILABLE', 'a cross-node play fails fast with UNAVAILABLE')
  }
  t.equal(await metric(front.admin!, 'circles_redis_connected'), 0)

  // Redis back, same data directory: the bridges reconnect by themselves.
  await redis.restart()
  while ((await health(frontHttp)).body.status !== 'ok') await turn()
  const answers = new Map<unknown, unknown>()
  for (let i = 0; i < 21; i++) {
    const answer = await queued.next(60_000)
    answers.set(answer.id, answer.result === undefined ? answer.error?.data?.code : (answer.result.result ?? answer.result.output))
  }
  t.equal(answers.get('slow'), 'slow done', 'the run in progress during the outage was answered')
  t.same(
    Array.from({ length: 20 }, (_, i) => answers.get(i)),
    Array.from({ length: 20 }, (_, i) => i + 1),
    'the 20 tasks queued before the outage were answered, in order',
  )
  t.equal((await remote.play('CIRCLE_PUBLIC_KEY')).output, context, 'new cross-node plays work')
  t.ok((await metric(front.admin!, 'circles_redis_reconnects_total')) >= 1, 'the gateway counted the reconnect')
  t.ok((await metric(owner.admin!, 'circles_redis_reconnects_total')) >= 1, 'the owner counted the reconnect')
  t.equal(await metric(front.admin!, 'circles_redis_connected'), 1)

  t.equal(await front.stop(), 0)
  t.equal(await owner.stop(), 0)
})

import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { RpcError, secretKeySigner } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { QueueKeys } from '../../src/queue/index.js'
import { NAMESPACE_DIRS, namespacePath } from '../../src/storage/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { ROOT, spawnCli } from '../helpers/cli-process.js'
import { connectedClient } from '../helpers/client.js'
import { startRedis } from '../helpers/redis-server.js'

// The cluster secret stays out of reach — read from a file or the environment, it is in no
// process's command line, and the sandbox hosts (which run tenants' scripts) do not inherit it —
// and a node given another secret refuses to serve: it exits non-zero, says why, and claims no
// lease. Launched nodes on a private redis-server.

const SECRET = 'cluster-secret-test-0123456789abcdef'
const OTHER = 'another-cluster-secret-9876543210fedcba'

/** What /proc says of a process: its command line and its environment, as text. */
function proc(pid: number): { cmdline: string; environ: string } {
  const read = (what: string) => readFileSync(`/proc/${pid}/${what}`).toString('latin1').replace(/\0/g, '\n')
  return { cmdline: read('cmdline'), environ: read('environ') }
}

t.test('the cluster secret: out of ps and of the sandbox hosts; a node with another one refuses to serve', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const keys = new QueueKeys('rhailib:')
  const dir = t.testdir({ 'front.json': JSON.stringify([{ name: 'front', port: 0 }]), 'env.json': JSON.stringify([{ name: 'env', port: 0 }]) })
  const secretFile = join(dir, 'cluster.secret')
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 })
  const otherFile = join(dir, 'other.secret')
  writeFileSync(otherFile, OTHER, { mode: 0o600 })
  const common = ['--redis-url', server.url, '--sandbox-processes', '1', '--admin-port', '0']

  const fromFile = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-file'), '--cluster-secret-file', secretFile, ...common], /^serving /)
  const fromEnv = await startCli(t, ['launch', '--config', join(dir, 'env.json'), '--db-path', join(dir, 'db-env'), ...common], /^serving /, { CIRCLES_CLUSTER_SECRET: SECRET })
  const hostsOf = (node: typeof fromFile) => node.events.find((e) => /^serving /.test(String(e.msg)))!['sandbox_pids'] as number[]

  await t.test('in no command line, and in no sandbox host environment', async (t) => {
    for (const [name, node] of [['--cluster-secret-file', fromFile], ['$CIRCLES_CLUSTER_SECRET', fromEnv]] as const) {
      t.notMatch(proc(node.pid).cmdline, SECRET, `${name}: not in the node's command line`)
      const hosts = hostsOf(node)
      t.equal(hosts.length, 1)
      for (const pid of hosts) {
        const { environ } = proc(pid)
        t.notMatch(environ, SECRET, `${name}: not in its sandbox host's environment`)
        t.notMatch(environ, 'CIRCLES_CLUSTER_SECRET', `${name}: nor the variable's name`)
        t.match(environ, /^PATH=/m, 'the host has the variables it is allowed')
      }
    }
  })

  await t.test('the two forms make the same secret: one node reaches the other', async (t) => {
    const caller = generateKeyPair()
    const envCircle = fromEnv.events.find((e) => e['circle'] === 'env')!['public_key'] as string
    const frontUrl = fromFile.events.find((e) => e['circle'] === 'front')!['url'] as string
    const client = await connectedClient(`${frontUrl}${envCircle}`)
    t.teardown(() => client.close())
    await client.authenticate({ signer: secretKeySigner(caller.secretKey) })
    t.equal((await client.play('CIRCLE_PUBLIC_KEY')).output, envCircle)
  })

  await t.test('a worker given another secret exits non-zero, says why, and claims no lease', async (t) => {
    const context = generateKeyPair().publicKey
    const db = join(dir, 'db-other')
    for (const sub of NAMESPACE_DIRS) mkdirSync(join(namespacePath(db, context), sub), { recursive: true })
    const { NODE_OPTIONS: _drop, ...env } = process.env
    const worker = spawnCli(t, ['worker', '--db-path', db, '--cluster-secret-file', otherFile, ...common], { cwd: ROOT, env })
    const outcome = await worker.waitFor((e) => /^worker serving/.test(String(e.msg))).then(
      () => 'served',
      () => 'exited',
    )
    t.equal(outcome, 'exited', 'it never served')
    t.equal((await worker.exited).code, 1, 'exit code 1')
    t.match(worker.stderr(), /^circles: CLUSTER_SECRET_MISMATCH: .*same secret/m, 'the reason, on stderr')
    t.ok(worker.lines.some((e) => e['code'] === 'CLUSTER_SECRET_MISMATCH' && e['key'] === keys.secretCheck()), 'and in its log, naming the key')
    t.equal(await redis.exists(keys.lease(context)), 0, 'no lease for its context')
    const frontUrl = fromFile.events.find((e) => e['circle'] === 'front')!['url'] as string
    const client = await connectedClient(`${frontUrl}${context}`)
    t.teardown(() => client.close())
    await client.authenticate({ signer: secretKeySigner(generateKeyPair().secretKey) })
    const code = await client.play('1').then(
      () => 'answered',
      (error: RpcError) => error.code,
    )
    t.equal(code, 'UNKNOWN_CIRCLE', "so a play for its context is answered at once, not after the task's deadline")
  })

  await t.test('the check value replaced, serving nodes refuse to serve at their next connection: they let go of their leases and exit 1', async (t) => {
    const envCircle = fromEnv.events.find((e) => e['circle'] === 'env')!['public_key'] as string
    t.equal(await redis.exists(keys.lease(envCircle)), 1)
    await redis.set(keys.secretCheck(), 'written by someone without the secret', 'PX', 120_000)
    // Cut every connection of the nodes (named circles-commands and circles-blocking): they reconnect.
    const clients = (await redis.client('LIST')) as string
    for (const line of clients.split('\n')) {
      const id = /\bid=(\d+)\b.*\bname=circles-/.exec(line)?.[1]
      if (id !== undefined) await redis.client('KILL', 'ID', id)
    }
    t.same([(await fromEnv.exited), (await fromFile.exited)], [1, 1], 'both stopped on their own, exit code 1')
    for (const node of [fromEnv, fromFile]) t.ok(node.events.some((e) => e['code'] === 'CLUSTER_SECRET_MISMATCH'), 'saying why')
    t.equal(await redis.exists(keys.lease(envCircle)), 0, 'the lease of the context it served is gone: no task is routed to it')
  })
})

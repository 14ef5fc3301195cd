import t from 'tap'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { RpcError, secretKeySigner } from '../../src/client/index.js'
import { readKeyFile } from '../../src/identity/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { ROOT, spawnCli } from '../helpers/cli-process.js'
import { connectedClient } from '../helpers/client.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

// `circles context create` puts a context under a database path (key, policy, init script); a
// multi-peer worker started on that path serves it through Redis, as a client of a gateway sees.

const SECRET = 'context-create-test-secret-0123456789'

/** Run a one-shot command of the built CLI; its exit code and output. */
async function circles(t: { teardown(fn: () => unknown): void }, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { NODE_OPTIONS: _drop, ...env } = process.env
  const cli = spawnCli(t, args, { cwd: ROOT, env })
  const { code } = await cli.exited
  return { code, stdout: cli.stdout(), stderr: cli.stderr() }
}

t.test('context create, then a worker serving the new context', { timeout: 90_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const dir = t.testdir({
    'init.js': 'save_data("profile", { name: "Created" }); print("init ran"); "ready"',
    'front.json': JSON.stringify([{ name: 'front', port: 0 }]),
  })
  const db = join(dir, 'db')
  const keyFile = join(dir, 'owner.key')
  const created = await circles(t, ['context', 'create', '--db-path', db, '--key', keyFile, '--policy', '{"run":"anonymous","write":"owner"}', '--script', join(dir, 'init.js')])
  t.equal(created.code, 0, created.stderr)
  const owner = await readKeyFile(keyFile)
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key file was made, mode 0600')
  t.same(JSON.parse(created.stdout), {
    public_key: owner.publicKey,
    key_file: keyFile,
    key_created: true,
    db_path: db,
    policy: { run: 'anonymous', write: 'owner', call: 'owner', subscribe: 'anonymous' },
    output: 'ready',
  })

  const prefix = testPrefix('context-create')
  const { url: redisUrl } = await testRedis(t, prefix)
  const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0']
  const worker = await startCli(t, ['worker', '--db-path', db, ...args], /^worker serving /)
  t.match(worker.events.at(-1), { msg: `worker serving 1 context(s) from ${db}`, contexts: 1 })
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const url = `${front.events.find((e) => e['circle'] === 'front')!['url'] as string}${owner.publicKey}`

  const anonymous = await connectedClient(url)
  t.teardown(() => anonymous.close())
  const read = await anonymous.play('[CIRCLE_PUBLIC_KEY, load_data("profile")]')
  t.same(read.result, [owner.publicKey, { name: 'Created' }], "the worker serves the context and what its init script stored")
  const refused = await anonymous.play('save_data("x", 1)').catch((error: unknown) => error)
  t.match(refused, RpcError, 'its policy holds: anonymous callers run, only the owner writes')
  t.equal((refused as RpcError).code, 'FORBIDDEN')
  const ownerClient = await connectedClient(url)
  t.teardown(() => ownerClient.close())
  await ownerClient.authenticate({ signer: secretKeySigner(owner.secretKey) })
  t.equal((await ownerClient.play('save_data("x", 1); load_data("x")')).output, '1', 'the owner writes')

  t.equal(await front.stop(), 0)
  t.equal(await worker.stop(), 0)
})

t.test('a worker with no context says how to make one', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const db = join(t.testdir(), 'db')
  const prefix = testPrefix('context-create-empty')
  const { url: redisUrl } = await testRedis(t, prefix)
  const worker = await startCli(t, ['worker', '--db-path', db, '--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--no-admin'], /^worker serving /)
  t.equal(worker.events.at(-1)!.msg, `worker serving 0 context(s) from ${db}: "circles context create --db-path ${db}" makes one (then start the worker again)`)
  t.equal(await worker.stop(), 0)
})

t.test('what context create refuses leaves nothing behind', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const dir = t.testdir({ 'bad.js': 'save_data("half", 1); throw new Error("init failed")' })
  const db = join(dir, 'db')
  const contexts = () => (existsSync(db) ? readdirSync(db).filter((name) => /^0[23]/.test(name)) : [])

  const failed = await circles(t, ['context', 'create', '--db-path', db, '--script', join(dir, 'bad.js')])
  t.equal(failed.code, 1)
  t.equal(failed.stderr, 'circles: SCRIPT_ERROR: context create: the init script failed, nothing was created: Error: init failed\n')
  t.same(contexts(), [], 'no namespace is left')

  const noPath = await circles(t, ['context', 'create'])
  t.equal(noPath.code, 64)
  t.equal(noPath.stderr, 'circles: USAGE: context create: --db-path DIR is required\n')

  const badPolicy = await circles(t, ['context', 'create', '--db-path', db, '--policy', '{"run":"everyone"}'])
  t.equal(badPolicy.code, 64)
  t.match(badPolicy.stderr, /^circles: USAGE: context create: --policy\.run must be "anonymous", "authenticated", "owner" or an array of public keys\n$/)

  const made = await circles(t, ['context', 'create', '--db-path', db])
  t.equal(made.code, 0, made.stderr)
  const { public_key: key, secret_key: secret } = JSON.parse(made.stdout) as { public_key: string; secret_key: string }
  t.match(secret, /^[0-9a-f]{64}$/, 'without --key the new secret key is printed')
  t.same(contexts(), [key])
  const again = await circles(t, ['context', 'create', '--db-path', db, '--key', secret])
  t.equal(again.code, 64, 'the same key (given as a secret) twice')
  t.equal(again.stderr, `circles: USAGE: context create: ${db} already holds context ${key}\n`)
})

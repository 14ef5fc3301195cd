import t from 'tap'
import { secretKeySigner } from '../../src/client/index.js'
import { connectedClient } from '../helpers/client.js'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { RpcError } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { startRedis } from '../helpers/redis-server.js'

// A clustered node serving its own circle: local plays write nothing to Redis. MONITOR on a
// private redis-server sees every command the node sends while 100 local plays run.

t.test('local plays of a clustered node send no task to Redis', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const server = await startRedis(t)
  const dir = t.testdir({ 'node.json': JSON.stringify([{ name: 'local', port: 0, policy: { run: 'authenticated', write: 'authenticated' } }]) })
  const node = await startCli(
    t,
    ['launch', '--config', join(dir, 'node.json'), '--db-path', join(dir, 'db'), '--redis-url', server.url, '--cluster-secret', 'local-plays-test-secret-0123', '--sandbox-processes', '1', '--admin-port', '0'],
    /^serving /,
  )
  const circle = node.events.find((e) => e['circle'] === 'local') as { url: string; public_key: string }
  const probe = new Redis(server.url)
  t.teardown(() => probe.disconnect())
  // The node has claimed its context before the watch starts (and, serving, has re-delivered and taken what Redis held for it).
  while ((await probe.exists(`rhailib:lease:{${circle.public_key}}`)) === 0) await probe.blpop('never', 0.05)

  const watcher = new Redis(server.url)
  t.teardown(() => watcher.disconnect())
  const monitor = await watcher.monitor()
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => seen.push(args))
  // A command of the test itself marks where the watch starts: everything after it is the node's.
  await probe.echo('watch-start')
  const client = await connectedClient(circle.url)
  t.teardown(() => client.close())
  await client.authenticate({ signer: secretKeySigner(generateKeyPair().secretKey) })
  for (let i = 0; i < 100; i++) await client.play(`save_data("n", ${i}); ${i}`)
  await probe.echo('watch-end')
  const during = seen.slice(seen.findIndex((a) => a[1] === 'watch-start') + 1, seen.findIndex((a) => a[1] === 'watch-end'))
  const allowed = (args: string[]) => {
    const name = args[0]!.toLowerCase()
    if (name === 'blmpop') return true // The blocking reader, always waiting.
    if (name === 'set') return /^rhailib:(node:\{[0-9a-f]+\}:alive|lease:\{[0-9a-f]+\})$/.test(args[1]!) // Liveness and lease renewals.
    return false
  }
  t.same(
    during.filter((args) => !allowed(args)),
    [],
    `${during.length} command(s) during 100 local plays: only the blocking reader and renewals`,
  )

  // The control: a play for a key nobody serves does reach Redis (the monitor would have seen a task).
  const stranger = await connectedClient(`${circle.url}${generateKeyPair().publicKey}`)
  t.teardown(() => stranger.close())
  await stranger.authenticate({ signer: secretKeySigner(generateKeyPair().secretKey) })
  await t.rejects(stranger.play('1'), RpcError)
  await probe.echo('control-end')
  const control = seen.slice(seen.findIndex((a) => a[1] === 'watch-end'))
  t.ok(
    control.some((args) => /^(evalsha|eval)$/i.test(args[0]!)),
    'a cross-node play shows in MONITOR (the enqueue script)',
  )
  monitor.disconnect()
  t.equal(await node.stop(), 0)
})

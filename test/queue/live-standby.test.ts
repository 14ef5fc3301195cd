import t from 'tap'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { cliBuilt, startCli } from '../helpers/cli-node.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

// A subscriber on a gateway node watches a context a worker hosts; the worker dies (kill -9) and
// a standby over the same database path takes the context over. The standby's log is a new
// one: the subscriber is told RESYNC_REQUIRED — never left with a silent gap — and subscribes
// again from the position it is given.

const SECRET = 'live-standby-test-secret-0123456789'

/** Play `script` and read its answer and the one notification it makes, in whichever order they come. */
async function playAndNotice(socket: RawSocket, script: string): Promise<{ answer: any; notice: any }> {
  socket.send({ jsonrpc: '2.0', id: 'play', method: 'play', params: { script } })
  const messages = [await socket.next(), await socket.next()]
  return { answer: messages.find((m) => m.id === 'play'), notice: messages.find((m) => m.id === undefined) }
}

t.test('a standby takeover ends the subscriptions through other nodes with RESYNC_REQUIRED', { timeout: 60_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const prefix = testPrefix('xsubs-standby')
  const { url: redisUrl } = await testRedis(t, prefix)
  const dir = t.testdir({ 'front.json': JSON.stringify([{ name: 'front', port: 0 }]) })
  const args = ['--redis-url', redisUrl, '--cluster-secret', SECRET, '--redis-prefix', prefix, '--sandbox-processes', '1', '--admin-port', '0']
  const pair = generateKeyPair()
  const context = pair.publicKey
  const workerArgs = ['worker', '--circle-public-key', context, '--db-path', join(dir, 'db'), ...args]
  const owner = await startCli(t, workerArgs, /^worker serving /)
  const standby = await startCli(t, [...workerArgs, '--standby'], /^waiting for the database lock/)
  const front = await startCli(t, ['launch', '--config', join(dir, 'front.json'), '--db-path', join(dir, 'db-front'), ...args], /^serving /)
  const url = `${front.events.find((e) => e['circle'] === 'front')!['url'] as string}${context}`

  const socket = await openSocket(url)
  t.teardown(() => socket.close())
  await authenticate(socket, pair)
  const first = (await socket.call('subscribe', {})).result
  t.match(first, { subscription: 's1', epoch: /^[0-9a-f]{16}$/, seq: 0 })
  // The play's answer and its notification come back on different paths through Redis (the
  // task's reply list, the context's channel): either may reach the gateway first.
  const { answer, notice } = await playAndNotice(socket, 'save_data("before", 1)')
  t.match(answer, { result: { result: null } })
  t.match(notice, { method: 'changed', params: { subscription: 's1', epoch: first.epoch, seq: 1, name: 'before' } }, 'the owner relays its changes')

  const killed = owner.kill9()
  const ended = await socket.next()
  await killed
  t.match(ended, { method: 'subscription_ended', params: { subscription: 's1', code: 'RESYNC_REQUIRED', epoch: /^[0-9a-f]{16}$/, seq: 0 } }, 'the subscriber is told to read again')
  t.not(ended.params.epoch, first.epoch, "from the standby's log, a new epoch")
  await standby.waitFor((e) => /^worker serving/.test(String(e.msg)))

  const resumed = await socket.call('subscribe', { after: { epoch: first.epoch, seq: 1 } })
  t.match(resumed, { error: { data: { code: 'RESYNC_REQUIRED', epoch: ended.params.epoch, seq: 0 } } }, 'resuming from the old epoch is refused with the new position')
  const again = (await socket.call('subscribe', { after: { epoch: ended.params.epoch, seq: 0 } })).result
  t.match(again, { subscription: 's3', epoch: ended.params.epoch, seq: 0 })
  const after = await playAndNotice(socket, '[load_data("before"), save_data("after", 2)]')
  t.match(after.answer, { result: { result: [1, null] } }, 'the standby serves the same data')
  t.match(after.notice, { method: 'changed', params: { subscription: 's3', epoch: ended.params.epoch, seq: 1, name: 'after' } })

  socket.close()
  await socket.closed
  t.equal(await standby.stop(), 0)
  t.equal(await front.stop(), 0)
})

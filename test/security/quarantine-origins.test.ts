/**
 * The crash quarantine blames the origin first: a client whose run was executing when its
 * sandbox host died is refused in that circle, and everyone else is served there; the whole
 * circle is refused only once crashes come from 3 origins within the window. Crashes are made
 * by the `host-hang` fault (the watchdog kills the host), and the node's limiters read a
 * simulated clock, so no back-off runs out while the test looks.
 */
import t from 'tap'
import { SimulatedClock } from 'xstate'
import { generateKeyPair } from '../../src/identity/index.js'
import { captureLog } from '../helpers/log-capture.js'
import { openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'

const HANG = { script: '"FAULT_ANSWER_THROW"', timeout_ms: 50 }

t.test('quarantine by origin in the circle, the whole circle only past 3 origins', { timeout: 90_000 }, async (t) => {
  const clock = new SimulatedClock()
  const log = captureLog()
  const { node, url } = await startNode(t, {
    clock,
    logger: log.logger,
    faults: ['host-hang'],
    sandbox: { processes: 1, watchdogGraceMs: 200 },
    policy: { run: 'anonymous' },
  })
  const other = generateKeyPair().publicKey
  await node.peers.spawnPeer({ pubkey: other, policy: { run: 'anonymous' } })
  const sockets: RawSocket[] = []
  t.teardown(() => sockets.forEach((s) => s.close()))
  const open = async (address: string, path = '') => {
    const socket = await openSocket(`${url}${path}`, { localAddress: address })
    sockets.push(socket)
    return socket
  }
  const [a, b, c, d] = await Promise.all(['127.0.0.71', '127.0.0.72', '127.0.0.73', '127.0.0.74'].map((address) => open(address)))
  const crash = async (socket: RawSocket) => t.match(await socket.call('play', HANG, 'hang', 30_000), { error: { data: { code: 'WORKER_CRASHED' } } })

  await crash(a!)
  t.match((await a!.call('play', { script: '"again"' })).error, { data: { code: 'RATE_LIMITED', limit: 'quarantine', scope: 'origin', retry_after_ms: 1000 } }, 'the crashing origin is refused in the circle')
  t.match(await d!.call('play', { script: '"served"' }), { result: { output: 'served' } }, 'another origin is served in the same circle')
  t.match(await (await open('127.0.0.71', other)).call('play', { script: '"elsewhere"' }), { result: { output: 'elsewhere' } }, 'the crashing origin is served in other circles')

  await crash(b!)
  t.match(await d!.call('play', { script: '"still served"' }), { result: { output: 'still served' } }, 'two origins: the circle still serves the others')

  await crash(c!)
  t.match((await d!.call('play', { script: '"x"' })).error, { data: { code: 'RATE_LIMITED', limit: 'quarantine', scope: 'circle', retry_after_ms: 1000 } }, 'the third origin quarantines the circle for everyone')
  t.match(await (await open('127.0.0.74', other)).call('play', { script: '"other"' }), { result: { output: 'other' } }, 'other circles are served')
  const logged = log.lines.filter((l) => /crashed its sandbox host/.test(l.msg))
  t.same(
    logged.map((l) => [l['remote'], l['origins'], l['circle_backoff_ms'] ?? null]),
    [
      ['127.0.0.71', 1, null],
      ['127.0.0.72', 2, null],
      ['127.0.0.73', 3, 1000],
    ],
    'each crash is logged with its origin and how many origins crashed the circle',
  )

  clock.increment(1_000)
  t.match(await d!.call('play', { script: '"back"' }), { result: { output: 'back' } }, 'served again once the back-off is over')
  const metrics = await fetch(`${node.adminUrl}/metrics`).then((r) => r.text())
  t.match(metrics, /circles_rate_limited_total\{limit="quarantine"\} 2\n/, 'both refusals are counted')
})

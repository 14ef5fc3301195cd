/**
 * Answers waiting on sockets are bounded. A socket whose answers are not being taken is no
 * longer read from (its requests wait in the kernel), is cut with a coded close (1008,
 * SLOW_CONSUMER) once what waits for it goes over its budget — or, when its address's or the
 * node's budget is over, if it is the socket holding most — and counts as idle unless it reads.
 *
 * The kernel takes a few MB of a socket's answers before they pile up in the node, so the
 * figures below leave room for anything from half a MB to 5 MB there.
 */
import t from 'tap'
import { SimulatedClock } from 'xstate'
import { generateKeyPair } from '../../src/identity/index.js'
import { captureLog } from '../helpers/log-capture.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startNode, type TestNode } from '../helpers/node.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'
import { waitUntil } from '../helpers/wait.js'

const MiB = 1024 * 1024
/** A play whose answer is about 1 MB. */
const BIG = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'play', params: { script: '"x".repeat(1000000)' } })
const SMALL = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'play', params: { script: `"${id}"` } })

/** An authenticated socket that has stopped reading and asked for `n` big answers at once. */
async function hoarder(test: TestNode, n: number, localAddress?: string): Promise<RawSocket> {
  const socket = await openSocket(test.url, localAddress === undefined ? {} : { localAddress })
  await authenticate(socket, test.circle)
  socket.pauseReading()
  socket.sendAll(Array.from({ length: n }, (_, i) => BIG(i)))
  return socket
}

/** Read answers until `n` have come or the socket closed; returns their ids and how it closed, if it did. */
async function drain(socket: RawSocket, n: number): Promise<{ ids: unknown[]; closed?: { code: number; reason: string } }> {
  socket.resumeReading()
  const ids: unknown[] = []
  try {
    while (ids.length < n) ids.push(((await socket.next(60_000)) as { id: unknown }).id)
  } catch {
    return { ids, closed: await socket.closed }
  }
  return { ids }
}

const cuts = async (admin: string) => {
  const m = await scrape(admin)
  return { socket: valueOf(m, 'circles_send_budget_cuts_total', { budget: 'socket' }), address: valueOf(m, 'circles_send_budget_cuts_total', { budget: 'address' }), node: valueOf(m, 'circles_send_budget_cuts_total', { budget: 'node' }) }
}

t.test('a socket whose answers are not taken is no longer read from, and is read again once they are', { timeout: 60_000 }, async (t) => {
  const test = await startNode(t)
  const socket = await hoarder(test, 12)
  await waitUntil(async () => valueOf(await scrape(test.admin), 'circles_backpressure_pauses_total') >= 1, 'the node stops reading the socket')
  socket.sendAll([SMALL('late-1'), SMALL('late-2'), SMALL('late-3')])
  // Another client's play goes through the sandbox: many turns of the node's event loop, in
  // which a socket still being read would have had its three frames read.
  const bystander = await openSocket(test.url, { localAddress: '127.0.0.2' })
  await authenticate(bystander, test.circle)
  t.match(await bystander.call('play', { script: '"served"' }), { result: { output: 'served' } }, 'others are served meanwhile')
  t.equal(valueOf(await scrape(test.admin), 'circles_requests_total', { method: 'play' }), 13, 'the three late plays were not read: 12 + the bystander’s')
  const { ids, closed } = await drain(socket, 15)
  t.same(ids, [...Array.from({ length: 12 }, (_, i) => i), 'late-1', 'late-2', 'late-3'], 'once the client reads, the node reads again and answers all, in order')
  t.equal(closed, undefined)
  t.equal(valueOf(await scrape(test.admin), 'circles_send_waiting_bytes'), 0, 'nothing waits any more')
  socket.close()
  bystander.close()
})

t.test('a socket over its own budget is cut with 1008 SLOW_CONSUMER', { timeout: 60_000 }, async (t) => {
  const log = captureLog()
  const test = await startNode(t, { gateway: { maxBufferedBytes: 2 * MiB }, logger: log.logger })
  const socket = await hoarder(test, 12)
  t.match(await log.waitFor((l) => /connection cut/.test(l.msg)), { budget: 'socket', remote: '127.0.0.1' })
  const { closed } = await drain(socket, 12)
  t.same(closed, { code: 1008, reason: 'SLOW_CONSUMER' }, 'the client that reads at last sees why')
  t.same(await cuts(test.admin), { socket: 1, address: 0, node: 0 })
  t.equal(valueOf(await scrape(test.admin), 'circles_errors_total', { code: 'SLOW_CONSUMER' }), 1)
  await waitUntil(async () => valueOf(await scrape(test.admin), 'circles_send_waiting_bytes') === 0, 'what the cut socket held is released')
})

t.test('the plays of a cut socket that have not started are dropped', { timeout: 60_000 }, async (t) => {
  const log = captureLog()
  // One run of the circle at a time: the rest wait in its mailbox, where a cut reaches them.
  const test = await startNode(t, { gateway: { maxBufferedBytes: 2 * MiB }, peers: { maxRunsInFlight: 1 }, logger: log.logger })
  await hoarder(test, 40)
  await log.waitFor((l) => /connection cut/.test(l.msg))
  const played = async () => {
    const m = await scrape(test.admin)
    return { ran: valueOf(m, 'circles_play_duration_seconds_count', { code: 'ok' }), dropped: valueOf(m, 'circles_play_duration_seconds_count', { code: 'CONNECTION_CLOSED' }) }
  }
  await waitUntil(async () => {
    const { ran, dropped } = await played()
    return ran + dropped === 40
  }, 'every play is accounted for')
  const { ran } = await played()
  // 2 MiB waiting in the node plus what the kernel takes (a few MB): cut by the 8th answer at the latest.
  t.ok(ran <= 10, `${ran} of the 40 ran; the rest were dropped before they started`)
})

t.test('an address over its budget loses its socket holding most; other addresses keep theirs', { timeout: 90_000 }, async (t) => {
  const log = captureLog()
  // 16 answers of ~1 MB: under the 16 MiB of one socket; two sockets of one address go over 20 MiB.
  const test = await startNode(t, { gateway: { maxBufferedBytesPerAddress: 20 * MiB, maxBufferedBytesPerNode: 64 * MiB }, limits: { loopback: true }, logger: log.logger })
  const first = await hoarder(test, 16, '127.0.0.61')
  const second = await hoarder(test, 16, '127.0.0.61')
  const elsewhere = await hoarder(test, 16, '127.0.0.62')
  t.match(await log.waitFor((l) => /connection cut/.test(l.msg)), { budget: 'address', remote: '127.0.0.61' })
  const results = await Promise.all([drain(first, 16), drain(second, 16), drain(elsewhere, 16)])
  const outcome = results.map((r) => (r.closed === undefined ? r.ids.length : `${r.closed.code} ${r.closed.reason}`))
  t.same(outcome.slice(0, 2).sort(), [16, '1008 SLOW_CONSUMER'].sort(), `one socket of the address is cut, the other is answered in full (${JSON.stringify(outcome)})`)
  t.equal(outcome[2], 16, 'the other address is answered in full')
  t.same(await cuts(test.admin), { socket: 0, address: 1, node: 0 })
  for (const s of [first, second, elsewhere]) s.close()
})

t.test('the node over its budget loses the socket holding most', { timeout: 90_000 }, async (t) => {
  const log = captureLog()
  const test = await startNode(t, { gateway: { maxBufferedBytesPerAddress: 20 * MiB, maxBufferedBytesPerNode: 20 * MiB }, logger: log.logger })
  const first = await hoarder(test, 16, '127.0.0.63')
  const second = await hoarder(test, 16, '127.0.0.64')
  t.match(await log.waitFor((l) => /connection cut/.test(l.msg)), { budget: 'node' })
  const results = await Promise.all([drain(first, 16), drain(second, 16)])
  const outcome = results.map((r) => (r.closed === undefined ? r.ids.length : `${r.closed.code} ${r.closed.reason}`))
  t.same(outcome.sort(), [16, '1008 SLOW_CONSUMER'].sort(), `one socket is cut, the other answered in full (${JSON.stringify(outcome)})`)
  t.same(await cuts(test.admin), { socket: 0, address: 0, node: 1 })
  first.close()
  second.close()
})

t.test('the idle timer counts taking answers as activity, and a socket that only sends is idle', { timeout: 60_000 }, async (t) => {
  const clock = new SimulatedClock()
  const test = await startNode(t, { clock, gateway: { idleTimeoutMs: 60_000 } })

  await t.test('a client that reads is not idle, though it sends nothing', async (t) => {
    const socket = await hoarder(test, 12)
    await waitUntil(async () => valueOf(await scrape(test.admin), 'circles_backpressure_pauses_total') >= 1, 'the node holds answers for the socket')
    clock.increment(50_000)
    t.same((await drain(socket, 12)).ids, Array.from({ length: 12 }, (_, i) => i), 'the client takes its answers at 50 s')
    clock.increment(20_000)
    t.match(await socket.call('play', { script: '"awake"' }), { result: { output: 'awake' } }, 'at 70 s, 20 s after it last read, the socket is open')
    clock.increment(60_000)
    t.same(await socket.closed, { code: 1001, reason: 'IDLE_TIMEOUT' }, 'a minute after its last frame and answer, it is idle')
  })

  await t.test('a client that sends but does not read is idle', async (t) => {
    const pauses = async () => valueOf(await scrape(test.admin), 'circles_backpressure_pauses_total')
    const before = await pauses()
    const socket = await hoarder(test, 12)
    await waitUntil(async () => (await pauses()) > before, 'the node holds answers for the socket')
    clock.increment(30_000)
    // Frames keep coming; the node does not read them, so they are no activity. (A play of
    // another socket goes through the sandbox: turns enough for the node to have read them.)
    socket.sendAll([SMALL('a'), SMALL('b')])
    const bystander = await openSocket(test.url, { localAddress: '127.0.0.2' })
    await authenticate(bystander, test.circle)
    t.match(await bystander.call('play', { script: '"turns"' }), { result: { output: 'turns' } })
    clock.increment(30_000)
    const { closed } = await drain(socket, 100)
    t.same(closed, { code: 1001, reason: 'IDLE_TIMEOUT' }, 'a minute after it last took an answer, though it sent frames 30 s ago')
    bystander.close()
  })
})

t.test('every answer is charged and credited: nothing waits once clients have read', { timeout: 30_000 }, async (t) => {
  const test = await startNode(t, { policy: { run: 'anonymous' } })
  const sockets = await Promise.all(Array.from({ length: 4 }, () => openSocket(test.url)))
  const key = generateKeyPair().publicKey
  for (const s of sockets) {
    s.send([BIG('b1'), SMALL('s1'), { jsonrpc: '2.0', id: 'n', method: 'fetch_nonce', params: { pubkey: key } }, 'not json'])
  }
  for (const s of sockets) {
    t.match(await s.next(), [{ id: 'b1' }, { id: 's1' }, { id: 'n' }, { error: { data: { code: 'INVALID_REQUEST' } } }])
  }
  t.equal(valueOf(await scrape(test.admin), 'circles_send_waiting_bytes'), 0)
  sockets.forEach((s) => s.close())
})

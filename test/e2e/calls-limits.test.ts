/**
 * Calls and the node's defences, through launched nodes: the load limits and the crash quarantine
 * judge a call by its calling context and by the originating client's address, and a callee that
 * crashes its sandbox host fails that call (and its caller, when the caller waited on that host).
 */
import t from 'tap'
import { FAULT_MARKER } from '../../src/faults/index.js'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { hostIndex } from '../../src/sandbox/index.js'
import { clientOf, OPEN_CALLS } from '../helpers/calls.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { launchNode } from '../helpers/launched.js'
import type { LogLine } from '../helpers/log-capture.js'
import { scrape, valueOf } from '../helpers/prometheus-text.js'

const ok = (value: unknown) => ({ ok: true, value })

t.test('a call costs a play of the calling context and of the client’s address', async (t) => {
  const keys = { a: generateKeyPair(), b: generateKeyPair() }
  const node = await launchNode(t, {
    keys,
    circles: [
      { name: 'a', port: 0, policy: OPEN_CALLS },
      { name: 'b', port: 0, policy: OPEN_CALLS },
    ],
    args: ['--limits-loopback', '--plays-per-second', '5'],
  })
  const client = clientOf(t, node.circles['a']!.url)
  const before = await scrape(node.admin)
  // The play is the client's own (its key's bucket); each call takes a token of a's and of the
  // address's, five of each at once: the sixth call on is refused.
  const answer = await client.play(keys.a.publicKey, `Promise.allSettled(Array.from({ length: 8 }, () => call('${keys.b.publicKey}', '1'))).then((r) => r.map((x) => x.status === 'fulfilled' ? 'ok' : x.reason.code))`)
  t.match(answer, ok(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']))
  const after = await scrape(node.admin)
  t.equal(valueOf(after, 'circles_rate_limited_total', { limit: 'plays' }) - valueOf(before, 'circles_rate_limited_total', { limit: 'plays' }), 3)
  t.equal(valueOf(after, 'circles_calls_total', { outcome: 'RATE_LIMITED' }), 3, 'calls are counted by outcome')
})

t.test('a callee that crashes its sandbox host', async (t) => {
  /** A key pinned to host `index` of two. */
  const onHost = (index: number): KeyPair => {
    for (;;) {
      const pair = generateKeyPair()
      if (hostIndex(pair.publicKey, 2) === index) return pair
    }
  }
  const keys = { a: onHost(0), far: onHost(1), b: onHost(1), near: onHost(1), a2: onHost(0), c: onHost(0), late: onHost(1), watched: onHost(0) }
  const node = await launchNode(t, {
    keys,
    circles: Object.keys(keys).map((name) => ({ name, port: 0, policy: OPEN_CALLS, limits: { timeout_ms: 20_000, cpu_ms: 20_000 } })),
    args: ['--sandbox-processes', '2'],
    // A run whose script holds the marker blocks its host's thread for good: the test kills that host.
    env: { CIRCLES_TEST_FAULTS: 'host-hang' },
  })
  t.equal(node.hostPids.length, 2)
  const client = clientOf(t, node.circles['a']!.url)
  // Built in the caller, so that only the callee's own script holds the marker.
  const half = FAULT_MARKER.length >> 1
  const hang = `JSON.stringify(${JSON.stringify(FAULT_MARKER.slice(0, half))} + ${JSON.stringify(FAULT_MARKER.slice(half))})`
  /** Wait for host 1 to hang (logged after line `from`), kill it, and wait for the host that replaces it. */
  const killHangingHost = async (pid: number, from: number): Promise<number> => {
    const later = (match: (line: LogLine) => boolean) => node.waitFor((line) => node.lines.indexOf(line) >= from && match(line))
    await later((line) => line.msg === 'sandbox host stderr' && line['host'] === 1 && String(line['line']).includes('host-hang'))
    process.kill(pid, 'SIGKILL')
    const started = await later((line) => line.msg === 'sandbox host started' && line['child'] === 'host-1')
    return started['host_pid'] as number
  }

  const farHost = node.hostPids[1]!
  let mark = node.lines.length
  const played = client.play(keys.a.publicKey, `call('${keys.far.publicKey}', ${hang}).then(() => 'done', (e) => [e.code, CIRCLE_PUBLIC_KEY])`)
  const replacement = await killHangingHost(farHost, mark)
  t.match(await played, ok(['WORKER_CRASHED', keys.a.publicKey]), 'a caller on another host catches WORKER_CRASHED and goes on')
  const quarantined = await node.waitFor((line) => /crashed its sandbox host/.test(line.msg))
  t.equal(quarantined['circle'], keys.a.publicKey, 'the calling context is quarantined, not the callee: the script was the caller’s')
  t.match(await client.play(keys.far.publicKey, '"far serves"'), ok('far serves'), 'the callee serves at once')

  mark = node.lines.length
  const waiting = client.play(keys.b.publicKey, `call('${keys.near.publicKey}', ${hang}).then(() => 'done', (e) => e.code)`)
  const third = await killHangingHost(replacement, mark)
  t.match(await waiting, { ok: false, code: 'WORKER_CRASHED', message: /was waiting on a call, died/ }, 'a caller waiting on the same host goes with it')

  // A caller on the host that lives, which wrote before its call: the callee's crash is its answer,
  // and what it wrote is notified on its context — its own log was not lost.
  const base = node.circles['a']!.url
  const watcher = await openSocket(`${base}${keys.watched.publicKey}`)
  t.teardown(() => watcher.close())
  await authenticate(watcher, generateKeyPair())
  t.match(await watcher.call('subscribe', {}), { result: { seq: 0 } })
  mark = node.lines.length
  const wrote = client.play(keys.watched.publicKey, `(async () => { save_data('before', 1); return await call('${keys.far.publicKey}', ${hang}) })()`)
  const fourth = await killHangingHost(third, mark)
  t.match(await wrote, { ok: false, code: 'WORKER_CRASHED' })
  t.match(await watcher.next(), { method: 'changed', params: { seq: 1, name: 'before', value: 1 } }, 'its write is notified; no resync')

  t.test('a call that had not started when its caller ended is not run', async (t) => {
    const before = await scrape(node.admin)
    // Host 1 hangs on a play of the client's own: the call into `late`, pinned there, waits behind it.
    const from = node.lines.length
    const hung = client.play(keys.far.publicKey, `"${FAULT_MARKER}"`)
    const answer = await client.play(keys.a2.publicKey, `(async () => { call('${keys.late.publicKey}', 'save_data("late", true)'); return await call('${keys.c.publicKey}', '"c answered"') })()`)
    t.match(answer, ok('c answered'), 'the caller ended without waiting for its first call')
    await killHangingHost(fourth, from)
    t.match(await hung, { ok: false, code: 'WORKER_CRASHED' })
    t.match(await client.play(keys.late.publicKey, 'load_data("late")'), ok(null), 'the call left behind never ran, on the host that took over either')
    const after = await scrape(node.admin)
    t.equal(valueOf(after, 'circles_calls_total', { outcome: 'CALL_CANCELLED' }) - valueOf(before, 'circles_calls_total', { outcome: 'CALL_CANCELLED' }), 1)
  })
})

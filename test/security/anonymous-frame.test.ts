/**
 * Finding 1 of the security review: one ~4 KB anonymous frame (a batch of 51 plays that each
 * print 3,000,000 empty lines and return 149,000 lone surrogates) grew the node to 4 GB and
 * killed it while joining the batch's answers. Reproduced here against the built CLI running as
 * a process of its own, so that its memory can be read from /proc.
 */
import t from 'tap'
import { openSocket } from '../helpers/raw-socket.js'
import { launchNode } from '../helpers/launched.js'
import { DEFAULTS } from '../../src/config/index.js'

const HEAVY = 'for (let i = 0; i < 3e6; i++) print(); "\\ud800".repeat(149000)'
const MiB = 1024 * 1024

t.test('one anonymous frame cannot take the node down', { timeout: 180_000 }, async (t) => {
  const node = await launchNode(t, {
    circles: [{ name: 'board', port: 0, policy: { run: 'anonymous', write: 'authenticated' } }],
    // The same node proves the last-resort handler below (the marker is in no other script).
    env: { CIRCLES_TEST_FAULTS: 'answer-uncaught' },
  })
  const board = node.circles['board']!
  const socket = await openSocket(board.url)
  t.match(await socket.call('play', { script: '"warm"' }), { result: { output: 'warm' } }, 'the node serves before the attack')
  const before = node.memory()

  t.test('a batch of 51 heavy plays is answered entry by entry, within the batch budget', async (t) => {
    socket.send(Array.from({ length: 51 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: HEAVY } })))
    const text = await socket.nextText(150_000)
    const budget = Math.min(DEFAULTS.MAX_BATCH_ANSWER_BYTES, DEFAULTS.MAX_BUFFERED_BYTES / 2)
    t.ok(Buffer.byteLength(text) <= budget, `the batch answer is ${Buffer.byteLength(text)} bytes, within ${budget}`)
    const answers = JSON.parse(text) as { id: number; result?: { output: string; logs: string[]; logs_truncated?: boolean }; error?: { data: { code: string } } }[]
    t.same(
      answers.map((a) => a.id),
      Array.from({ length: 51 }, (_, i) => i),
      'every entry is answered, in request order',
    )
    const served = answers.filter((a) => a.result !== undefined)
    const refused = answers.filter((a) => a.error !== undefined)
    t.ok(served.length >= 1, `${served.length} answered in full`)
    t.ok(refused.length >= 1, `${refused.length} answered OUTPUT_TOO_LARGE`)
    t.same(new Set(refused.map((a) => a.error!.data.code)), new Set(['OUTPUT_TOO_LARGE']))
    // Every answer is the same size, so the budget is spent on a prefix: charged in request order.
    t.same(
      answers.map((a) => a.result !== undefined),
      answers.map((_, i) => i < served.length),
      'the entries past the budget are the last ones',
    )
    for (const a of served) {
      t.equal(a.result!.output.length, 149_000, 'the whole result, lone surrogates and all')
      t.equal(a.result!.logs.length, DEFAULTS.MAX_LOG_LINES, 'print() with no arguments costs a line: capped')
      t.equal(a.result!.logs_truncated, true)
    }
  })

  t.test('the node is alive, grew by less than 300 MB, and serves the next play', async (t) => {
    t.ok(node.alive(), 'the process still runs')
    const after = node.memory()
    // VmHWM is the peak RSS since the process started: the growth at any moment of the attack.
    const growth = after.peak - before.rss
    t.ok(growth < 300 * MiB, `node RSS grew by ${(growth / MiB).toFixed(0)} MB at most (peak ${(after.peak / MiB).toFixed(0)} MB)`)
    const host = node.memory(node.hostPids[0])
    t.comment(`sandbox host peak RSS ${(host.peak / MiB).toFixed(0)} MB`)
    t.match(await socket.call('play', { script: '6 * 7' }), { result: { output: '42' } })
    const health = await fetch(`${board.url.replace('ws', 'http')}healthz`)
    t.equal(health.status, 200)
  })

  t.test('an error nothing catches on the answer path is logged by the last-resort handler; the node serves on', async (t) => {
    const answer = await socket.call('play', { script: '"FAULT_ANSWER_THROW"' })
    t.match(answer, { result: { output: 'FAULT_ANSWER_THROW' } }, 'the answer went out before the fault fired')
    const logged = await node.waitFor((line) => /last-resort handler/.test(line.msg))
    t.match(logged, { level: 50, err: { message: 'fault injected: answer-uncaught' } })
    t.match(await socket.call('play', { script: '"still serving"' }), { result: { output: 'still serving' } })
    t.ok(node.alive())
  })

  t.teardown(() => socket.close())
})

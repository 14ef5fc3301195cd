import t from 'tap'
import { encodeOutcome, encodeReady, encodeSkipped, encodeSuspended, ReplyReader, type HostReply } from '../../src/sandbox/wire.js'

t.test('ReplyReader reassembles replies however the stream cuts them', async (t) => {
  const big = { code: null, message: '', body: `"output":"${'€'.repeat(100_000)}","logs":[]`, runMs: 1.5, cpuMs: 1.25, callsMs: 0.5 }
  const small = { code: 'SCRIPT_ERROR' as const, message: 'Error: x', body: '"logs":["a"]', runMs: 0, cpuMs: 0, callsMs: 0 }
  const calls = [[1, '02'.padEnd(66, 'a'), `"${'€'.repeat(1000)}"`, 0], [2, 'x', 'y', 250]] as const
  const stream = Buffer.concat([
    encodeReady(),
    encodeOutcome(0, big, 0),
    encodeSuspended(1, 812.5, calls),
    encodeOutcome(1, small, 1),
    encodeSkipped(3),
    encodeOutcome(2, big, 0),
  ])
  const summary = (r: HostReply) => {
    switch (r.type) {
      case 'ready':
        return 'ready'
      case 'skipped':
        return ['skipped', r.seq]
      case 'suspended':
        return ['suspended', r.seq, r.remainingMs, r.calls]
      case 'outcome':
        return [r.seq, r.flags, r.outcome.code, r.outcome.message, r.outcome.body.length, r.outcome.callsMs]
    }
  }
  for (const size of [1, 3, 4, 5, 7, 4096, 65536, stream.length]) {
    const reader = new ReplyReader()
    const replies: HostReply[] = []
    for (let at = 0; at < stream.length; at += size) reader.push(stream.subarray(at, at + size), (r) => replies.push(r))
    t.same(
      replies.map(summary),
      [
        'ready',
        [0, 0, null, '', big.body.length, 0.5],
        ['suspended', 1, 812.5, calls],
        [1, 1, 'SCRIPT_ERROR', 'Error: x', small.body.length, 0],
        ['skipped', 3],
        [2, 0, null, '', big.body.length, 0.5],
      ],
      `chunks of ${size} bytes`,
    )
  }
})

t.test('a host that hands on calls of the wrong shape is broken', async (t) => {
  for (const calls of [[[1, 'peer', 'script']], [['1', 'peer', 'script', 0]], [[1, 'peer', 7, 0]], [[1, 'peer', 's', -1]], {}]) {
    const reader = new ReplyReader()
    const bad = encodeSuspended(0, 1, calls as never)
    t.throws(() => reader.push(bad, () => {}), /malformed calls/, JSON.stringify(calls))
  }
})

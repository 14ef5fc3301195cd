import t from 'tap'
import { encodeOutcome, encodeReady, ReplyReader, type HostReply } from '../../src/sandbox/wire.js'

t.test('ReplyReader reassembles replies however the stream cuts them', async (t) => {
  const big = { code: null, message: '', body: `"output":"${'€'.repeat(100_000)}","logs":[]`, runMs: 1.5, cpuMs: 1.25 }
  const small = { code: 'SCRIPT_ERROR' as const, message: 'Error: x', body: '"logs":["a"]', runMs: 0, cpuMs: 0 }
  const stream = Buffer.concat([encodeReady(), encodeOutcome(0, big, 0), encodeOutcome(1, small, 1), encodeOutcome(2, big, 0)])
  for (const size of [1, 3, 4, 5, 7, 4096, 65536, stream.length]) {
    const reader = new ReplyReader()
    const replies: HostReply[] = []
    for (let at = 0; at < stream.length; at += size) reader.push(stream.subarray(at, at + size), (r) => replies.push(r))
    t.same(
      replies.map((r) => (r.type === 'ready' ? 'ready' : [r.seq, r.flags, r.outcome.code, r.outcome.message, r.outcome.body.length])),
      ['ready', [0, 0, null, '', big.body.length], [1, 1, 'SCRIPT_ERROR', 'Error: x', small.body.length], [2, 0, null, '', big.body.length]],
      `chunks of ${size} bytes`,
    )
  }
})

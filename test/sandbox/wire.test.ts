import t from 'tap'
import { DEFAULT_LIMITS, type RunRequest, type SandboxContext } from '../../src/sandbox/run.js'
import {
  decodeFrame,
  FrameReader,
  FrameWriter,
  MalformedRecord,
  MAX_FRAME_BYTES,
  MAX_REPLY_BYTES,
  MESSAGE,
  RecordWriter,
  ReplyReader,
  writeOutcome,
  writeReady,
  writeSkipped,
  writeSuspended,
  type HostMessage,
  type HostReply,
} from '../../src/sandbox/wire.js'

const reply = (write: (w: RecordWriter) => void): Buffer => {
  const w = new RecordWriter(16)
  write(w)
  return w.take()
}

/** A copy of `from` with `change` made to it. */
const edit = (from: Buffer, change: (b: Buffer) => void): Buffer => {
  const copy = Buffer.from(from)
  change(copy)
  return copy
}

/** `body` behind its u32 length prefix: a reply, or a record of a frame. */
const framed = (body: number[]): Buffer => {
  const b = Buffer.alloc(4 + body.length)
  b.writeUInt32LE(body.length, 0)
  Buffer.from(body).copy(b, 4)
  return b
}

t.test('ReplyReader reassembles replies however the stream cuts them', async (t) => {
  const big = { code: null, message: '', body: `"output":"${'€'.repeat(100_000)}","logs":[]`, runMs: 1.5, cpuMs: 1.25, callsMs: 0.5 }
  const small = { code: 'SCRIPT_ERROR' as const, message: 'Error: x', body: '"logs":["a"]', runMs: 0, cpuMs: 0, callsMs: 0 }
  const calls = [[1, '02'.padEnd(66, 'a'), `"${'€'.repeat(1000)}"`, 0], [2, 'x', 'y', 250]] as const
  // One writer for them all, as a host's thread writes a frame's outcomes.
  const stream = reply((w) => {
    writeReady(w)
    writeOutcome(w, 0, big, 0)
    writeSuspended(w, 1, 812.5, calls)
    writeOutcome(w, 1, small, 1)
    writeSkipped(w, 3)
    writeOutcome(w, 2, big, 0)
  })
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
    const bad = reply((w) => writeSuspended(w, 0, 1, calls as never))
    t.throws(() => reader.push(bad, () => {}), /malformed calls/, JSON.stringify(calls))
  }
})

t.test('a host that sends malformed replies is broken: every length and field is checked', async (t) => {
  const ok = reply((w) => writeOutcome(w, 7, { code: null, message: 'm', body: '"output":1', runMs: 1, cpuMs: 1, callsMs: 0 }, 0))
  const withEffects = reply((w) =>
    writeOutcome(w, 7, { code: null, message: '', body: '', runMs: 1, cpuMs: 1, callsMs: 0, effects: { lost: false, list: [{ kind: 'emit', topic: 't', value: '1' }] } }, 0),
  )
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a length past the bound', edit(ok, (b) => b.writeUInt32LE(MAX_REPLY_BYTES + 1, 0)), /more than/],
    ['an empty reply', framed([]), /empty reply/],
    ['an unknown type', framed([99]), /unknown reply type 99/],
    ['a READY with bytes after it', framed([2, 0]), /malformed READY/],
    ['a short SKIPPED', framed([4, 1, 0]), /malformed SKIPPED/],
    ['a short SUSPENDED', framed([3, 1, 0, 0, 0]), /truncated SUSPENDED/],
    ['an outcome shorter than its header', framed([1, 0, 0, 0, 0, 0, 0, 0]), /truncated outcome/],
    ['an unknown error code', edit(ok, (b) => b.writeUInt16LE(60_000, 9)), /unknown error code 60000/],
    ['unknown flags', edit(ok, (b) => b.writeUInt8(0x80, 11)), /unknown flags/],
    ['a time that is not a number', edit(ok, (b) => b.writeDoubleLE(Number.NaN, 12)), /times that are not numbers/],
    ['a negative time', edit(ok, (b) => b.writeDoubleLE(-1, 20)), /times that are not numbers/],
    ['a message longer than the outcome', edit(ok, (b) => b.writeUInt32LE(1000, 36)), /truncated outcome/],
    ['effects longer than the outcome', edit(withEffects, (b) => b.writeUInt32LE(1000, 40)), /truncated outcome/],
    ['effects that claim more entries than they hold', edit(withEffects, (b) => b.writeUInt32LE(5, 45)), /./],
  ]
  for (const [what, bytes, error] of cases) {
    const reader = new ReplyReader()
    const replies: HostReply[] = []
    t.throws(() => reader.push(bytes, (r) => replies.push(r)), error, what)
    t.same(replies, [], `${what}: nothing is taken from it`)
  }
  // An announced length past the bound is refused as soon as its prefix is in, whatever follows.
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32LE(MAX_REPLY_BYTES + 1, 0)
  for (const cut of [1, 3, 4]) {
    const reader = new ReplyReader()
    const seen: HostReply[] = []
    t.throws(() => {
      reader.push(Buffer.concat([ok, prefix.subarray(0, cut)]), (r) => seen.push(r))
      reader.push(prefix.subarray(cut), (r) => seen.push(r))
    }, /more than/, `a prefix past the bound, cut after ${cut} bytes`)
    t.equal(seen.length, 1, 'the reply before it was taken')
  }
  // The unedited replies decode, so the cases above fail on the field each one changed.
  const replies: HostReply[] = []
  new ReplyReader().push(Buffer.concat([ok, withEffects]), (r) => replies.push(r))
  t.equal(replies.length, 2)
})

const facts: SandboxContext = { circle: 'c', root: '/db/c', dbPathLabel: 'c', limits: DEFAULT_LIMITS, quota: { maxDocumentBytes: 1, maxNamespaceBytes: 2, maxDocuments: 3, maxNameBytes: 4 } }

/** The records of a stream of frames, as a host's thread decodes them. */
function decodeStream(stream: Buffer, size: number): HostMessage[][] {
  const reader = new FrameReader()
  const frames: HostMessage[][] = []
  for (let at = 0; at < stream.length; at += size) {
    reader.push(stream.subarray(at, at + size), (records) => {
      const messages: HostMessage[] = []
      decodeFrame(records, (m) => messages.push(m))
      frames.push(messages)
    })
  }
  return frames
}

t.test('frames to a host decode to what the node encoded, however the stream cuts them', async (t) => {
  const play: RunRequest = { script: `"${'€'.repeat(50_000)}"`, caller: '02'.padEnd(66, 'b'), canWrite: true, canCall: false, timeoutMs: 1500 }
  const call: RunRequest = { script: '1 + 1', caller: '', canWrite: false, canCall: true, timeoutMs: 812.25, chain: ['02'.padEnd(66, 'c'), 'ctx-a', 'ctx-€'] }
  // A lone surrogate has no UTF-8 form: the script crosses as UTF-16, as written (a pair and € too).
  const lone: RunRequest = { script: "'\ud800' + '\udfff' + '\ud83d\ude00€'", caller: 'ab', canWrite: false, canCall: false, timeoutMs: 5 }
  const w = new FrameWriter()
  w.begin()
  w.context(3, facts)
  w.run(3, play)
  w.run(3, call)
  w.run(3, lone)
  const first = w.end()
  w.begin()
  w.resume(1, 4, { code: null, message: '', body: '"value":2' })
  w.resume(2, 5, { code: 'CALL_DEPTH_EXCEEDED', message: 'too deep €', body: '' })
  w.expire(7)
  const second = w.end()
  const stream = Buffer.concat([first, second])
  const expected = [
    [
      { type: MESSAGE.CONTEXT, ctxId: 3, context: facts },
      { type: MESSAGE.RUN, ctxId: 3, request: play },
      { type: MESSAGE.RUN, ctxId: 3, request: call },
      { type: MESSAGE.RUN, ctxId: 3, request: lone },
    ],
    [
      { type: MESSAGE.RESUME, runSeq: 1, callId: 4, settled: { code: null, message: '', body: '"value":2' } },
      { type: MESSAGE.RESUME, runSeq: 2, callId: 5, settled: { code: 'CALL_DEPTH_EXCEEDED', message: 'too deep €', body: '' } },
      { type: MESSAGE.EXPIRE, runSeq: 7 },
    ],
  ]
  for (const size of [1, 3, 4, 5, 9, 4096, stream.length]) t.same(decodeStream(stream, size), expected, `chunks of ${size} bytes`)
})

t.test('a host refuses malformed records from the node: every length and field is checked', async (t) => {
  const w = new FrameWriter()
  w.begin()
  w.run(1, { script: 'x', caller: 'ab', canWrite: false, canCall: false, timeoutMs: 10 })
  const run = w.end().subarray(4)
  // RUN record: u32 length | u8 type @4 | u32 ctxId @5 | u8 flags @9 | f64 timeoutMs @10 | u16 caller bytes @18 | caller @20 | u16 chain @22 | script @24
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a record shorter than its header', Buffer.from([1, 0, 0]), /shorter than its header/],
    ['a record longer than its frame', edit(run, (b) => b.writeUInt32LE(run.length, 0)), /bytes with \d+ left/],
    ['an empty record', Buffer.concat([framed([]), Buffer.from([0])]), /bytes with/],
    ['an unknown type', framed([42]), /unknown type 42/],
    ['unknown run flags', edit(run, (b) => b.writeUInt8(8, 9)), /unknown flags 8/],
    ['a UTF-16 script of an odd number of bytes', edit(run, (b) => b.writeUInt8(4, 9)), /odd number of bytes/],
    ['a time limit that is not a number', edit(run, (b) => b.writeDoubleLE(Number.NaN, 10)), /time limit/],
    ['a negative time limit', edit(run, (b) => b.writeDoubleLE(-1, 10)), /time limit/],
    ['a caller longer than the record', edit(run, (b) => b.writeUInt16LE(500, 18)), /truncated record of type 1/],
    ['a chain longer than the record', edit(run, (b) => b.writeUInt16LE(3, 22)), /truncated record of type 1/],
    ['a truncated run', framed([1, 0, 0]), /truncated record of type 1/],
    ['a resume with an unknown error code', framed([3, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]), /unknown error code 65535/],
    ['a resume whose message is longer than the record', framed([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]), /truncated record of type 3/],
    ['an expiry with trailing bytes', framed([4, 0, 0, 0, 0, 1]), /trailing bytes/],
    ['a short expiry', framed([4, 0, 0]), /truncated record of type 4/],
    ['a close with trailing bytes', framed([2, 0]), /trailing bytes/],
    ['context facts that are not JSON', Buffer.concat([framed([0, 1, 0, 0, 0, 0x7b])]), /not JSON/],
    ['context facts of the wrong shape', (() => {
      const text = Buffer.from(JSON.stringify({ ...facts, limits: { memoryMb: 'a lot' } }))
      return framed([0, 1, 0, 0, 0, ...text])
    })(), /wrong shape/],
  ]
  for (const [what, records, error] of cases) {
    let caught: unknown
    try {
      decodeFrame(records, () => {})
    } catch (e) {
      caught = e
    }
    t.ok(caught instanceof MalformedRecord, `${what}: refused as a malformed record`)
    t.match((caught as Error).message, error, what)
  }
  // The records before a malformed one are handed over first (they run before the host stops).
  const messages: HostMessage[] = []
  t.throws(() => decodeFrame(Buffer.concat([run, framed([42])]), (m) => messages.push(m)), /unknown type/)
  t.same(messages.map((m) => m.type), [MESSAGE.RUN])
  // A frame announced past the bound is refused before any of it is buffered.
  const huge = Buffer.alloc(4)
  huge.writeUInt32LE(MAX_FRAME_BYTES + 1, 0)
  t.throws(() => new FrameReader().push(huge, () => {}), /more than/)
})

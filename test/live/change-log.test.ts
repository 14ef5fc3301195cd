import t from 'tap'
import { ChangeLog, decodeEffects, encodeEffects, EffectRecorder, WriteLedger, type Notice, type RunEffects } from '../../src/live/index.js'

const change = (name: string, value?: string): Notice => ({ type: 'changed', name, op: 'save', ...(value === undefined ? {} : { value }) })

t.test('ChangeLog', async (t) => {
  t.test('numbers notices from 1 and gives back exactly what came after a position', async (t) => {
    const log = new ChangeLog({ maxEntries: 10, maxAgeMs: 1000, maxBytes: 1 << 20 })
    t.match(log.epoch, /^[0-9a-f]{16}$/)
    t.same(log.position, { epoch: log.epoch, seq: 0 })
    for (const name of ['a', 'b', 'c']) log.append(change(name, '1'))
    t.same(log.since(log.epoch, 1)?.map((l) => l.seq), [2, 3])
    t.same(log.since(log.epoch, 3), [])
    t.equal(log.since(log.epoch, 4), undefined, 'a position this log never reached')
    t.equal(log.since(new ChangeLog({ maxEntries: 1, maxAgeMs: 1, maxBytes: 1 }).epoch, 0), undefined, 'another epoch')
  })

  t.test('keeps at most maxEntries: a position before them is RESYNC', async (t) => {
    const log = new ChangeLog({ maxEntries: 3, maxAgeMs: 1000, maxBytes: 1 << 20 })
    for (let i = 0; i < 5; i++) log.append(change(`n${i}`))
    t.equal(log.size, 3)
    t.same(log.since(log.epoch, 2)?.map((l) => l.seq), [3, 4, 5])
    t.equal(log.since(log.epoch, 1), undefined)
  })

  t.test('keeps at most maxBytes of encoded notifications, oldest dropped first', async (t) => {
    const log = new ChangeLog({ maxEntries: 1000, maxAgeMs: 1000, maxBytes: 1000 })
    const first = log.append(change('a', JSON.stringify('x'.repeat(300))))
    t.ok(first.bytes > 300 && first.bytes < 500, `${first.bytes} bytes`)
    log.append(change('b', JSON.stringify('x'.repeat(300))))
    t.equal(log.size, 2)
    log.append(change('c', JSON.stringify('x'.repeat(300))))
    t.equal(log.size, 2, 'the first went')
    t.equal(log.since(log.epoch, 0), undefined)
    t.same(log.since(log.epoch, 1)?.map((l) => l.seq), [2, 3])
  })

  t.test('keeps notices for maxAgeMs by its clock', async (t) => {
    let now = 0
    const log = new ChangeLog({ maxEntries: 1000, maxAgeMs: 5000, maxBytes: 1 << 20 }, () => now)
    log.append(change('a'))
    now = 3000
    log.append(change('b'))
    now = 5000
    t.same(log.since(log.epoch, 0)?.map((l) => l.seq), [1, 2], 'both still within 5 s')
    now = 5001
    t.equal(log.since(log.epoch, 0), undefined, 'the first is older than 5 s')
    t.same(log.since(log.epoch, 1)?.map((l) => l.seq), [2])
    now = 8001
    t.equal(log.since(log.epoch, 1), undefined)
    t.same(log.since(log.epoch, 2), [], 'at the head: nothing missed')
  })

  t.test('encodes the notification once: the subscription id is spliced in', async (t) => {
    const log = new ChangeLog({ maxEntries: 10, maxAgeMs: 1000, maxBytes: 1 << 20 })
    const logged = log.append({ type: 'event', topic: 'chat/"x"', value: '{"a":[1]}', caller: '' })
    t.same(JSON.parse(logged.head + '"s7"' + logged.tail), {
      jsonrpc: '2.0',
      method: 'event',
      params: { subscription: 's7', epoch: log.epoch, seq: 1, topic: 'chat/"x"', value: { a: [1] }, caller: '' },
    })
  })
})

t.test('run effects', async (t) => {
  const limits = { maxEmits: 3, maxEmitBytes: 100, maxNotifyValueBytes: 20 }

  t.test('round-trip through the binary form, unicode and empty values included', async (t) => {
    const effects: RunEffects = {
      lost: false,
      list: [
        { kind: 'save', name: 'ü/1', value: '"ü€𝄞"' },
        { kind: 'save', name: 'big' },
        { kind: 'delete', name: 'gone' },
        { kind: 'emit', topic: 't', value: '""' },
      ],
    }
    const buf = encodeEffects(effects)
    t.same(decodeEffects(buf, 0, buf.length), effects)
    t.throws(() => decodeEffects(buf, 0, buf.length - 1), /truncated|malformed/)
  })

  t.test('the recorder keeps values within the limit, checks emit, and reports a run past its bounds as lost', async (t) => {
    // One recorder per run.
    const recorder = new EffectRecorder(limits, new WriteLedger())
    recorder.saved('a', '"short"')
    recorder.saved('b', JSON.stringify('x'.repeat(30)))
    recorder.deleted('c')
    recorder.emit('t', '1')
    t.throws(() => recorder.emit('../x', '1'), { code: 'INVALID_NAME' })
    t.throws(() => recorder.emit('t', JSON.stringify('x'.repeat(30))), { code: 'QUOTA_EXCEEDED' })
    recorder.emit('t', '2')
    recorder.emit('t', '3')
    t.throws(() => recorder.emit('t', '4'), { code: 'QUOTA_EXCEEDED', message: 'emit: at most 3 events per run' })
    t.same(recorder.take(), {
      lost: false,
      list: [
        { kind: 'save', name: 'a', value: '"short"' },
        { kind: 'save', name: 'b' },
        { kind: 'delete', name: 'c' },
        { kind: 'emit', topic: 't', value: '1' },
        { kind: 'emit', topic: 't', value: '2' },
        { kind: 'emit', topic: 't', value: '3' },
      ],
    })
    t.equal(new EffectRecorder(limits, new WriteLedger()).take(), undefined, 'a run without effects has none')
    const many = new EffectRecorder(limits, new WriteLedger())
    for (let i = 0; i < 1001; i++) many.deleted(`d${i}`)
    t.same(many.take(), { lost: true, list: [] }, '1,001 notices: lost')
    const uncertain = new EffectRecorder(limits, new WriteLedger())
    uncertain.uncertain()
    t.same(uncertain.take(), { lost: true, list: [] })
  })
})

t.test("a log that continues another node's (a gateway's copy of its owner's log)", async (t) => {
  const log = new ChangeLog({ maxEntries: 10, maxAgeMs: 1000, maxBytes: 1 << 20 }, undefined, { epoch: '0123456789abcdef', seq: 41 })
  t.same(log.position, { epoch: '0123456789abcdef', seq: 41 }, "the owner's epoch and seq")
  t.equal(log.append(change('a')).seq, 42, 'numbered on from there')
  t.same(log.since('0123456789abcdef', 41)?.map((l) => l.seq), [42])
  t.equal(log.since('0123456789abcdef', 40), undefined, 'before it started: it cannot tell')
})

import t from 'tap'
import { parseFrame, type FrameEntry, type FrameLimits, type ParsedFrame } from '../../src/protocol/index.js'
import { shapeExcess } from '../../src/protocol/frame-shape.js'
import { DEFAULTS } from '../../src/config/index.js'

const limits: FrameLimits = {
  maxFrameBytes: DEFAULTS.MAX_FRAME_BYTES,
  maxBatchEntries: DEFAULTS.MAX_BATCH_ENTRIES,
  maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
  maxFrameDepth: DEFAULTS.MAX_FRAME_DEPTH,
  maxFrameValues: DEFAULTS.MAX_FRAME_VALUES,
}
const KEY = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'

function entry(frame: ParsedFrame): FrameEntry {
  if (frame.type !== 'single') throw new Error('expected a single entry')
  return frame.entry
}

function rejected(e: FrameEntry): { id: unknown; code: string; rpc: number | null } {
  if (e.type !== 'reject') throw new Error(`expected reject, got ${e.type}`)
  return { id: e.id, code: e.error.code, rpc: e.error.rpcCode }
}

t.test('parseFrame(single request)', async (t) => {
  t.test('types a valid call and echoes its id exactly', async (t) => {
    for (const id of [1, 0, -7, 1.5, 'abc', '', null]) {
      const e = entry(parseFrame(JSON.stringify({ jsonrpc: '2.0', id, method: 'play', params: { script: '1+1' } }), limits))
      t.same(e, { type: 'call', id, call: { method: 'play', params: { script: '1+1' } } }, `id ${JSON.stringify(id)}`)
    }
  })

  t.test('treats a request without id as a notification', async (t) => {
    const e = entry(parseFrame('{"jsonrpc":"2.0","method":"fetch_nonce","params":{"pubkey":"' + KEY + '"}}', limits))
    t.same(e, { type: 'notify', call: { method: 'fetch_nonce', params: { pubkey: KEY } } })
  })

  t.test('answers -32700 with id null for malformed JSON', async (t) => {
    for (const text of ['{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', '', '{', 'nul', '\u0000']) {
      t.same(rejected(entry(parseFrame(text, limits))), { id: null, code: 'PARSE_ERROR', rpc: -32700 }, JSON.stringify(text))
    }
  })

  t.test('answers -32600 for non-request values (spec example: method 1)', async (t) => {
    t.same(rejected(entry(parseFrame('{"jsonrpc": "2.0", "method": 1, "params": "bar"}', limits))), {
      id: null,
      code: 'INVALID_REQUEST',
      rpc: -32600,
    })
    for (const text of ['1', '"x"', 'null', 'true', '{}', '{"jsonrpc":"1.0","method":"play","id":1}']) {
      const r = rejected(entry(parseFrame(text, limits)))
      t.equal(r.code, 'INVALID_REQUEST', text)
      t.equal(r.rpc, -32600, text)
    }
  })

  t.test('echoes a readable id on an invalid request, null otherwise', async (t) => {
    t.same(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":9,"method":true}', limits))).id, 9)
    t.same(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":{"a":1},"method":"play"}', limits))).id, null)
    t.same(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":[1],"method":"play"}', limits))).id, null)
  })

  t.test('refuses integer ids past 2^53, which could not be echoed exactly', async (t) => {
    const r = rejected(entry(parseFrame('{"jsonrpc":"2.0","id":12345678901234567890,"method":"play","params":{"script":""}}', limits)))
    t.same(r, { id: null, code: 'INVALID_REQUEST', rpc: -32600 })
  })

  t.test('refuses unknown top-level members and non-structured params', async (t) => {
    t.equal(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":1,"method":"play","extra":1}', limits))).code, 'INVALID_REQUEST')
    t.equal(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":1,"method":"play","params":"x"}', limits))).code, 'INVALID_REQUEST')
    t.equal(rejected(entry(parseFrame('{"jsonrpc":"2.0","id":1,"method":"play","params":null}', limits))).code, 'INVALID_REQUEST')
  })

  t.test('answers -32601 for an unknown method, with the id', async (t) => {
    t.same(rejected(entry(parseFrame('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}', limits))), {
      id: '1',
      code: 'METHOD_NOT_FOUND',
      rpc: -32601,
    })
    t.equal(rejected(entry(parseFrame('{"jsonrpc":"2.0","method":"rpc.discover","id":2}', limits))).code, 'METHOD_NOT_FOUND')
  })

  t.test('drops an unknown-method notification without an answer', async (t) => {
    const e = entry(parseFrame('{"jsonrpc": "2.0", "method": "foobar"}', limits))
    t.equal(e.type, 'drop')
  })

  t.test('answers -32602 for bad params', async (t) => {
    const cases = [
      '{"jsonrpc":"2.0","id":1,"method":"play"}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":[]}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":5}}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1","timeout_ms":0}}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1","timeout_ms":1.5}}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1","timeout_ms":"5"}}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1","extra":true}}',
      '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1","__proto__":{"x":1}}}',
      '{"jsonrpc":"2.0","id":1,"method":"fetch_nonce","params":{}}',
      '{"jsonrpc":"2.0","id":1,"method":"fetch_nonce","params":{"pubkey":7}}',
      '{"jsonrpc":"2.0","id":1,"method":"authenticate","params":{"pubkey":"' + KEY + '"}}',
      '{"jsonrpc":"2.0","id":1,"method":"authenticate","params":{"pubkey":"' + KEY + '","signature":"zz"}}',
    ]
    for (const text of cases) {
      const r = rejected(entry(parseFrame(text, limits)))
      t.same(r, { id: 1, code: 'INVALID_PARAMS', rpc: -32602 }, text)
    }
  })

  t.test('answers INVALID_PUBLIC_KEY (-32602) for keys that are not on the curve or malformed', async (t) => {
    const bad = ['02' + 'ff'.repeat(32), '05' + KEY.slice(2), KEY.slice(0, 64), 'xyz', '04' + 'ab'.repeat(64)]
    for (const pubkey of bad) {
      const r = rejected(entry(parseFrame(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'fetch_nonce', params: { pubkey } }), limits)))
      t.same(r, { id: 3, code: 'INVALID_PUBLIC_KEY', rpc: -32602 }, pubkey)
    }
  })

  t.test('normalises an uncompressed or 0x-prefixed key', async (t) => {
    const uncompressed =
      '0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'
    for (const pubkey of [uncompressed, `0x${KEY}`, KEY.toUpperCase().replace('0X', '0x')]) {
      const e = entry(parseFrame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'fetch_nonce', params: { pubkey } }), limits))
      t.same(e, { type: 'call', id: 1, call: { method: 'fetch_nonce', params: { pubkey: KEY } } })
    }
  })

  t.test('answers SCRIPT_TOO_LARGE for a script over the limit', async (t) => {
    const small: FrameLimits = { ...limits, maxScriptBytes: 10 }
    const r = rejected(entry(parseFrame('{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"12345678901"}}', small)))
    t.equal(r.code, 'SCRIPT_TOO_LARGE')
    const multibyte = rejected(entry(parseFrame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: 'ééééé\u00e9' } }), small)))
    t.equal(multibyte.code, 'SCRIPT_TOO_LARGE', 'counts UTF-8 bytes, not characters')
  })

  t.test('answers PAYLOAD_TOO_LARGE for a frame over the limit', async (t) => {
    const small: FrameLimits = { ...limits, maxFrameBytes: 64 }
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: 'x'.repeat(100) } })
    t.same(rejected(entry(parseFrame(text, small))), { id: null, code: 'PAYLOAD_TOO_LARGE', rpc: -32031 })
    t.equal(rejected(entry(parseFrame(Buffer.from(text), small))).code, 'PAYLOAD_TOO_LARGE')
    t.equal(rejected(entry(parseFrame('"' + 'é'.repeat(40) + '"', small))).code, 'PAYLOAD_TOO_LARGE', 'counts bytes')
  })

  t.test('accepts a Buffer frame', async (t) => {
    const e = entry(parseFrame(Buffer.from('{"jsonrpc":"2.0","id":"b","method":"play","params":{"script":"é"}}'), limits))
    t.same(e, { type: 'call', id: 'b', call: { method: 'play', params: { script: 'é' } } })
  })
})

t.test('parseFrame(batch)', async (t) => {
  t.test('answers one -32600 with id null for an empty batch', async (t) => {
    t.same(rejected(entry(parseFrame('[]', limits))), { id: null, code: 'INVALID_REQUEST', rpc: -32600 })
  })

  t.test('answers -32600 for each entry of an invalid batch ([1] and [1,2,3])', async (t) => {
    for (const text of ['[1]', '[1,2,3]']) {
      const frame = parseFrame(text, limits)
      if (frame.type !== 'batch') throw new Error('expected batch')
      t.equal(frame.entries.length, JSON.parse(text).length)
      for (const e of frame.entries) t.same(rejected(e), { id: null, code: 'INVALID_REQUEST', rpc: -32600 })
    }
  })

  t.test('answers -32700 once for a batch that is not valid JSON', async (t) => {
    const text = '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]'
    t.same(rejected(entry(parseFrame(text, limits))), { id: null, code: 'PARSE_ERROR', rpc: -32700 })
  })

  t.test('handles the specification mixed batch entry by entry', async (t) => {
    const text = JSON.stringify([
      { jsonrpc: '2.0', method: 'play', params: { script: '1+2' }, id: '1' },
      { jsonrpc: '2.0', method: 'notify_hello', params: [7] },
      { jsonrpc: '2.0', method: 'play', params: { script: '3' }, id: '2' },
      { foo: 'boo' },
      { jsonrpc: '2.0', method: 'foo.get', params: { name: 'myself' }, id: '5' },
      { jsonrpc: '2.0', method: 'play', params: { script: '' } },
    ])
    const frame = parseFrame(text, limits)
    if (frame.type !== 'batch') throw new Error('expected batch')
    t.same(
      frame.entries.map((e) => e.type),
      ['call', 'drop', 'call', 'reject', 'reject', 'notify'],
    )
    t.same(rejected(frame.entries[3]!), { id: null, code: 'INVALID_REQUEST', rpc: -32600 })
    t.same(rejected(frame.entries[4]!), { id: '5', code: 'METHOD_NOT_FOUND', rpc: -32601 })
  })

  t.test('yields only drops and notifications for an all-notification batch', async (t) => {
    const text = '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]'
    const frame = parseFrame(text, limits)
    if (frame.type !== 'batch') throw new Error('expected batch')
    t.ok(frame.entries.every((e) => e.type === 'drop' || e.type === 'notify'))
  })

  t.test('answers BATCH_TOO_LARGE (-32600) past the batch limit', async (t) => {
    const text = JSON.stringify(Array.from({ length: 4 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '' } })))
    const r = rejected(entry(parseFrame(text, { ...limits, maxBatchEntries: 3 })))
    t.same(r, { id: null, code: 'BATCH_TOO_LARGE', rpc: -32600 })
  })
})

t.test('parseFrame(shape): depth and values are bounded by a scan before parsing', async (t) => {
  const shaped = { ...limits, maxFrameDepth: 4, maxFrameValues: 20 }
  const refusal = (text: string) => {
    const e = entry(parseFrame(text, shaped))
    return e.type === 'reject' ? { code: e.error.code, rpc: e.error.rpcCode, id: e.id, details: e.error.details } : e.type
  }

  t.test('nesting up to the limit parses; one level more is FRAME_TOO_COMPLEX (-32600) with data.limit', async (t) => {
    const call = (depth: number) => `{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"x","timeout_ms":${'['.repeat(depth - 2)}1${']'.repeat(depth - 2)}}}`
    t.match(entry(parseFrame(call(4), shaped)), { type: 'reject', error: { code: 'INVALID_PARAMS' } }, 'depth 4 reaches the parser (and its params check)')
    t.same(refusal(call(5)), { code: 'FRAME_TOO_COMPLEX', rpc: -32600, id: null, details: { limit: 4, shape: 'depth' } })
  })

  t.test('a deep frame is refused before JSON.parse: even unterminated, it is not a PARSE_ERROR', async (t) => {
    t.match(refusal('['.repeat(100)), { code: 'FRAME_TOO_COMPLEX' })
    t.match(refusal('['.repeat(500_000) + ']'.repeat(500_000)), { code: 'FRAME_TOO_COMPLEX', details: { shape: 'depth' } })
    t.match(refusal('[[[[1]]]'), { code: 'PARSE_ERROR' }, 'shallow enough: the parser says what is wrong')
  })

  t.test('brackets, commas and colons inside strings do not count, escaped quotes included', async (t) => {
    const script = '[[[[[{{{{{:,:,:,' + '\\"[[[[[' + '\\\\' + '\\"' + ',,,,,,,,,,,,,,,,,,,,,,,,'
    const text = `{"jsonrpc":"2.0","id":"[[[[[[","method":"play","params":{"script":"${script}"}}`
    t.equal(JSON.parse(text).params.script.length > 0, true, 'the frame is valid JSON')
    t.match(entry(parseFrame(text, shaped)), { type: 'call', id: '[[[[[[', call: { method: 'play' } })
    t.match(refusal('{"a":"\\\\"' + ',[[[[[]]]]]}'), { code: 'FRAME_TOO_COMPLEX' }, 'a string ending in an even run of backslashes ends at its quote')
  })

  t.test('values: containers, members and elements, counted', async (t) => {
    const members = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',')}}`
    // n members: n colons, n - 1 commas, 1 container.
    t.match(entry(parseFrame(members(10), shaped)), { type: 'reject', error: { code: 'INVALID_REQUEST' } }, '20 values: parsed')
    t.same(refusal(members(11)), { code: 'FRAME_TOO_COMPLEX', rpc: -32600, id: null, details: { limit: 20, shape: 'values' } })
    t.match(refusal(`[${'1,'.repeat(30)}1]`), { code: 'FRAME_TOO_COMPLEX', details: { shape: 'values' } })
  })

  t.test('the defaults admit the largest batch the node accepts', async (t) => {
    const batch = JSON.stringify(
      Array.from({ length: DEFAULTS.MAX_BATCH_ENTRIES }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'play', params: { script: '1', timeout_ms: 10 } })),
    )
    const frame = parseFrame(batch, limits)
    t.equal(frame.type === 'batch' && frame.entries.every((e) => e.type === 'call'), true)
  })
})

/** The scan, written the slow and obvious way: byte by byte, a backslash skipping the next byte in a string. */
function referenceExcess(text: string, maxDepth: number, maxValues: number): string | undefined {
  const bytes = Buffer.from(text)
  let depth = 0
  let values = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (inString) {
      if (b === 0x5c) i++
      else if (b === 0x22) inString = false
      continue
    }
    if (b === 0x22) inString = true
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return 'depth'
      if (++values > maxValues) return 'values'
    } else if (b === 0x5d || b === 0x7d) depth--
    else if ((b === 0x2c || b === 0x3a) && ++values > maxValues) return 'values'
  }
  return undefined
}

t.test('shapeExcess agrees with a byte-by-byte scan on random text', async (t) => {
  const random = rng(0x5ca9)
  const alphabet = ['[', ']', '{', '}', ',', ':', '"', '\\', 'a', ' ', '€']
  let disagreements = 0
  for (let i = 0; i < 20_000; i++) {
    const text = Array.from({ length: Math.floor(random() * 80) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
    if (shapeExcess(Buffer.from(text), 3, 12) !== referenceExcess(text, 3, 12)) disagreements++
  }
  t.equal(disagreements, 0)
})

/** xorshift32: a seeded generator so a failing fuzz case can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x1_0000_0000
  }
}

t.test('parseFrame(fuzz)', async (t) => {
  const random = rng(0xc1c1e5)
  const seeds = [
    '{"jsonrpc":"2.0","id":1,"method":"play","params":{"script":"1+1","timeout_ms":5}}',
    '[{"jsonrpc":"2.0","id":"a","method":"fetch_nonce","params":{"pubkey":"' + KEY + '"}},{"jsonrpc":"2.0","method":"x"}]',
    '{"jsonrpc":"2.0","id":null,"method":"authenticate","params":{"pubkey":"' + KEY + '","signature":"0x' + 'ab'.repeat(65) + '"}}',
  ]
  const alphabet = '{}[]":,0123456789.-+eEtrufalsn\\u \t\n\u0000é😀'
  let checked = 0
  const check = (input: string) => {
    let frame: ParsedFrame
    try {
      frame = parseFrame(input, limits)
    } catch (error) {
      t.fail(`parseFrame threw for ${JSON.stringify(input)}: ${(error as Error).message}`)
      return
    }
    const entries = frame.type === 'single' ? [frame.entry] : frame.entries
    for (const e of entries) {
      if (e.type === 'reject') {
        // Every error answer is a well-formed JSON-RPC error: integer code, message, data.code, valid id.
        const ok =
          Number.isInteger(e.error.rpcCode) &&
          typeof e.error.message === 'string' &&
          typeof e.error.code === 'string' &&
          (e.id === null || typeof e.id === 'string' || typeof e.id === 'number')
        if (!ok) t.fail(`malformed error for ${JSON.stringify(input)}`)
      }
    }
    checked++
  }
  for (let i = 0; i < 3000; i++) {
    const seed = seeds[i % seeds.length]!
    const mode = i % 3
    if (mode === 0) check(seed.slice(0, Math.floor(random() * seed.length)))
    else if (mode === 1) {
      const chars = [...seed]
      for (let k = 0; k < 1 + random() * 4; k++) chars[Math.floor(random() * chars.length)] = alphabet[Math.floor(random() * alphabet.length)]!
      check(chars.join(''))
    } else {
      const len = Math.floor(random() * 64)
      check(Array.from({ length: len }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''))
    }
  }
  t.equal(checked, 3000, 'every fuzzed frame produced a result without throwing')
})

import type { Random } from './random.js'

/**
 * Frames for the protocol fuzzer: valid frames (the seeds) and mutations of them — bytes flipped,
 * inserted or cut, frames spliced, values nested, ids duplicated, huge numbers, odd unicode,
 * batches — so that the parser, the gateway and the answer path all see what an attacker sends.
 */

export interface FrameContext {
  /** Keys the seeds use for fetch_nonce / authenticate. */
  readonly pubkeys: readonly string[]
}

/**
 * A frame to send: text; bytes sent as a text frame (they may not be valid UTF-8, which the
 * WebSocket layer answers by closing with 1007); or bytes sent as a binary frame.
 */
export type Frame =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'text-bytes'; readonly bytes: Buffer }
  | { readonly type: 'binary'; readonly bytes: Buffer }

const SCRIPTS = [
  '1 + 1',
  '"é€😀".repeat(3)',
  'print("a", 1, { b: 2 }); [CALLER_PUBLIC_KEY, CIRCLE_PUBLIC_KEY]',
  'print(); print(); null',
  'load_data("fuzz")',
  'list_data("", { limit: 3 })',
  'save_data("fuzz", { n: 1 })',
  'throw new Error("fuzz")',
  'for (;;) {}',
  '(async () => { await null; return 7 })()',
  'new Promise(() => {})',
  '"\\ud800".repeat(10)',
  '({ toJSON() { return "x" } })',
  'Math.random() < 1 && crypto.randomUUID().length',
  'JSON.stringify(Object.getOwnPropertyNames(globalThis).length)',
  'undefined',
  '10n ** 30n',
  'Symbol.for("x").toString()',
]

const ODD_STRINGS = ['', '\u0000', '\ud800', '\udfff', '😀', '\u202e', 'A'.repeat(300), '\\', '"', '\n', '__proto__', 'constructor', 'play', 'fetch_nonce']
const ODD_NUMBERS = [0, -0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, 5e-324, Number.MAX_SAFE_INTEGER, 4294967296, 1e21]
/** Number literals JSON.stringify cannot produce: given as text. */
const ODD_NUMBER_TEXT = ['1e400', '-1e400', '1.0', '0.0000000000000000000001', '123456789012345678901234567890', '-0.0', '1E+2']

function id(random: Random): unknown {
  switch (random.int(6)) {
    case 0:
      return random.int(1000)
    case 1:
      return `s${random.int(1000)}`
    case 2:
      return null
    case 3:
      return random.pick(ODD_NUMBERS)
    case 4:
      return random.pick(ODD_STRINGS)
    default:
      return random.int(10)
  }
}

/** One valid request (or notification) as a value. */
function seedRequest(random: Random, ctx: FrameContext): Record<string, unknown> {
  const request: Record<string, unknown> = { jsonrpc: '2.0' }
  switch (random.int(6)) {
    case 0:
      request['method'] = 'fetch_nonce'
      request['params'] = { pubkey: random.pick(ctx.pubkeys) }
      break
    case 1: {
      request['method'] = 'authenticate'
      let signature = ''
      for (let i = 0; i < 130; i++) signature += '0123456789abcdef'[random.int(16)]
      request['params'] = { pubkey: random.pick(ctx.pubkeys), signature: random.chance(0.5) ? `0x${signature}` : signature }
      break
    }
    default:
      request['method'] = 'play'
      request['params'] = random.chance(0.3) ? { script: random.pick(SCRIPTS), timeout_ms: 1 + random.int(30) } : { script: random.pick(SCRIPTS) }
  }
  if (random.chance(0.9)) request['id'] = id(random)
  return request
}

/** A valid frame as a value: one request, or a batch of them. */
export function seedValue(random: Random, ctx: FrameContext): unknown {
  if (random.chance(0.7)) return seedRequest(random, ctx)
  return Array.from({ length: 1 + random.int(8) }, () => seedRequest(random, ctx))
}

function oddValue(random: Random): unknown {
  switch (random.int(7)) {
    case 0:
      return random.pick(ODD_STRINGS)
    case 1:
      return random.pick(ODD_NUMBERS)
    case 2:
      return null
    case 3:
      return random.chance(0.5)
    case 4:
      return []
    case 5:
      return {}
    default:
      return { nested: [random.pick(ODD_STRINGS)] }
  }
}

/** Mutate a parsed value in place-ish (returns the new value). */
function mutateValue(value: unknown, random: Random, ctx: FrameContext, depth = 0): unknown {
  if (depth > 3 || random.chance(0.15)) {
    switch (random.int(6)) {
      case 0:
        return oddValue(random)
      case 1:
        return [value]
      case 2:
        return { jsonrpc: '2.0', method: 'play', params: { script: 'typeof x' }, id: value as never }
      case 3:
        return seedValue(random, ctx)
      default:
        break
    }
  }
  if (Array.isArray(value)) {
    const copy = value.map((v) => (random.chance(0.3) ? mutateValue(v, random, ctx, depth + 1) : v))
    switch (random.int(5)) {
      case 0:
        if (copy.length > 0) copy.push(copy[random.int(copy.length)]) // a duplicate entry (same id)
        break
      case 1:
        copy.splice(random.int(copy.length + 1), 0, oddValue(random))
        break
      case 2:
        copy.length = random.int(copy.length + 1)
        break
      default:
        break
    }
    return copy
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    const keys = Object.keys(copy)
    switch (random.int(6)) {
      case 0:
        if (keys.length > 0) delete copy[random.pick(keys)]
        break
      case 1:
        copy[random.pick(['extra', 'params', 'id', 'method', 'jsonrpc', 'timeout_ms', 'script', '__proto__'])] = oddValue(random)
        break
      case 2:
        if (keys.length > 0) {
          const key = random.pick(keys)
          copy[key] = mutateValue(copy[key], random, ctx, depth + 1)
        }
        break
      case 3:
        if (keys.length > 0) copy[random.pick(keys)] = random.pick(ODD_NUMBERS)
        break
      default:
        for (const key of keys) if (random.chance(0.3)) copy[key] = mutateValue(copy[key], random, ctx, depth + 1)
    }
    return copy
  }
  if (typeof value === 'string') {
    const at = random.int(value.length + 1)
    return random.chance(0.5) ? value.slice(0, at) + random.pick(ODD_STRINGS) + value.slice(at) : random.pick(ODD_STRINGS)
  }
  return oddValue(random)
}

/** Flip a few bytes of a frame: the result may not be valid UTF-8. */
function flipBytes(text: string, random: Random): Buffer {
  const copy = Buffer.from(text)
  for (let i = 0, n = 1 + random.int(4); i < n && copy.length > 0; i++) copy[random.int(copy.length)] = random.int(256)
  return copy
}

/** Mutate frame text at the character level. */
function mutateText(text: string, random: Random, other: string): string {
  const bytes = Buffer.from(text)
  switch (random.int(7)) {
    case 0: {
      // Flipped bytes, kept as valid text (invalid UTF-8 becomes U+FFFD).
      return flipBytes(text, random).toString()
    }
    case 1: {
      const at = random.int(bytes.length + 1)
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(random.pick(['"', '{', '[', ']', '}', ',', ':', '\\', '\\u', 'null', '1e999', '\u0000'])), bytes.subarray(at)]).toString()
    }
    case 2: {
      const from = random.int(bytes.length + 1)
      return Buffer.concat([bytes.subarray(0, from), bytes.subarray(from + 1 + random.int(10))]).toString()
    }
    case 3:
      return text.slice(0, random.int(text.length + 1)) + other.slice(random.int(other.length + 1)) // splice two frames
    case 4: {
      const from = random.int(text.length)
      const piece = text.slice(from, from + 1 + random.int(40))
      return text.slice(0, from) + piece.repeat(2 + random.int(4)) + text.slice(from)
    }
    case 5:
      return text.replace(/-?\d+(\.\d+)?/, random.pick(ODD_NUMBER_TEXT))
    default:
      return text.slice(0, random.int(text.length + 1))
  }
}

/** A frame to send: mostly mutations of valid frames, some valid, some pathological. */
export function nextFrame(random: Random, ctx: FrameContext): Frame {
  const roll = random.next()
  if (roll < 0.15) return { type: 'text', text: JSON.stringify(seedValue(random, ctx)) }
  if (roll < 0.55) return { type: 'text', text: JSON.stringify(mutateValue(seedValue(random, ctx), random, ctx)) ?? 'null' }
  if (roll < 0.9) {
    return { type: 'text', text: mutateText(JSON.stringify(seedValue(random, ctx)), random, JSON.stringify(seedValue(random, ctx))) }
  }
  switch (random.int(9)) {
    case 8:
      return { type: 'text-bytes', bytes: flipBytes(JSON.stringify(seedValue(random, ctx)), random) }
    case 0:
      return { type: 'binary', bytes: Buffer.from(JSON.stringify(seedValue(random, ctx))) }
    case 1: {
      // Deep nesting (now and then far deeper than any parser's stack).
      const depth = 1 + random.int(random.chance(0.1) ? 200_000 : 2_000)
      return { type: 'text', text: '['.repeat(depth) + ']'.repeat(random.chance(0.5) ? depth : random.int(depth)) }
    }
    case 2:
      // A batch at or just past the entry limit.
      return { type: 'text', text: JSON.stringify(Array.from({ length: 99 + random.int(3) }, () => seedRequest(random, ctx))) }
    case 3:
      // Duplicate ids inside one batch.
      return { type: 'text', text: JSON.stringify(Array.from({ length: 2 + random.int(5) }, () => ({ ...seedRequest(random, ctx), id: 7 }))) }
    case 4:
      // A frame near or over the frame limit (1 MiB); rare, they are costly to send.
      if (random.chance(0.9)) return { type: 'text', text: JSON.stringify(seedRequest(random, ctx)) }
      return { type: 'text', text: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: `"${'x'.repeat(1_040_000 + random.int(20_000))}".length` } }) }
    case 5:
      return { type: 'text', text: random.pick(['', ' ', '[]', '{}', 'null', '1', '"x"', '[[]]', '[{}]', '[null]', '\ufeff{}', '{"jsonrpc":"2.0"}']) }
    case 6:
      return { type: 'text', text: `{"jsonrpc":"2.0","id":${random.pick(ODD_NUMBER_TEXT)},"method":"play","params":{"script":"1"}}` }
    default:
      return { type: 'text', text: JSON.stringify(seedRequest(random, ctx)).replace('"2.0"', random.pick(['"1.0"', '2', '"2.0 "', 'null'])) }
  }
}

/** The ids a frame could be answered with (JSON text of each), as far as it parses. */
export function idsOf(frame: Frame): string[] {
  if (frame.type === 'binary') return []
  let value: unknown
  // Most frames do not parse: a SyntaxError without a stack trace costs far less to make.
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    value = JSON.parse(frame.type === 'text' ? frame.text : frame.bytes.toString())
  } catch {
    return []
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
  const entries = Array.isArray(value) ? value : [value]
  const ids: string[] = []
  for (const entry of entries) {
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && Object.hasOwn(entry, 'id')) {
      ids.push(JSON.stringify((entry as { id: unknown }).id) ?? 'null')
    }
  }
  return ids
}

/**
 * The trusted code that prepares an isolated-vm context once, before any script runs in it.
 *
 * This function is never called in Node: the engine evaluates its source text
 * (`realmBootstrap.toString()`) inside the isolate, so it must be self-contained — it may use
 * only its parameters and the ES built-ins of a bare V8 context, never anything imported here.
 * It is ordinary TypeScript so that the compiler checks it like the rest of the code.
 *
 * Isolation between runs without a new context per run (a context costs ~1 ms; a warm run a few
 * microseconds) rests on four moves:
 *
 * 1. Everything reachable from `globalThis` — and the intrinsics reachable only through syntax
 *    (generator, async and iterator prototypes, %TypedArray%, …) — is deep-frozen. No run can
 *    add a global, patch a built-in or a prototype; the attempt throws (scripts run in strict
 *    mode). Capabilities that could let a run outlive itself or block the thread are removed
 *    first: SharedArrayBuffer, Atomics, WebAssembly, WeakRef, FinalizationRegistry, V8's inert
 *    `console`, and RegExp's legacy statics (`RegExp.$1`, `RegExp.input`, …), which would show
 *    one run the last match of another.
 * 2. Engine state that freezing cannot reach is made per run: `Math.random` draws from a
 *    generator re-seeded from the host's CSPRNG at the start of every run, and `Symbol.for` /
 *    `Symbol.keyFor` use a registry that lives and dies with the run (V8's own registry is
 *    isolate-wide and never freed).
 * 3. Each script is a strict-mode direct `eval` inside a function created per circle by the
 *    Function constructor, so its scope chain is only its parameters — the per-run globals — and
 *    the frozen global object; its declarations live and die with the eval. The function is per
 *    circle because V8 caches eval compilations by source *and* enclosing function: shared, the
 *    cache would let one tenant tell from `cpu_ms` whether another ran a given text.
 * 4. The per-run functions (`print`, `load_data`, `call`, …) are fresh closures carrying the run's
 *    id; the host refuses calls whose id is not the running one, so nothing a run leaves behind
 *    can act in a later run.
 *
 * A run that awaits a `call` is suspended: the host runs other work on the thread meanwhile —
 * other runs start, others resume — and runs it again in slices (`resume`, then `poll`) as its
 * calls settle. Runs are then alive together in this one context, so the per-run engine state of
 * move 2 (the random generator, the symbol registry) and the active run id are saved with a run
 * when its slice ends suspended and put back when it resumes: the state a slice sees is always
 * its own run's. A slice always ends with the microtask queue drained, and no run can reach
 * another's objects (everything shared is frozen), so nothing of one run executes in another's
 * slice.
 *
 * Freezing has one well-known cost, the "override mistake": assigning `obj.toString = …` on an
 * object that inherits a frozen `toString` would throw. The properties commonly assigned that way
 * are turned into accessors whose setter defines an own property on the receiver instead.
 *
 * Answers are bounded in UTF-8 bytes as they will be sent: the completion value's members
 * against `maxOutputBytes`, the `logs` member against `maxLogBytes` and `maxLogLines`. The run
 * returns them already encoded as JSON text, so nothing downstream re-encodes them.
 */

/** A host call's answer, as copied into the isolate. */
export type HostAnswer = readonly [ok: true, value: unknown] | readonly [ok: false, code: string, message: string]

/** The host callback: `hostCall(op, runId, a, b, c)`. */
export type HostCall = (op: string, runId: number, a?: unknown, b?: unknown, c?: unknown) => HostAnswer

export interface RealmLimits {
  readonly maxOutputBytes: number
  readonly maxLogBytes: number
  readonly maxLogLines: number
}

/**
 * What a slice of a run returns to the host:
 * - `['ok', body]` — the JSON members `"output":…[,"result":…],"logs":[…]`;
 * - `['error', code, message, body]` — body is the `"logs"` member(s);
 * - `['pending']` — the completion value is a promise not settled yet: after `run` or `resume`,
 *   call `poll(runId, waiting)` (the microtask queue has drained by then).
 */
export type RealmResult =
  | readonly ['ok', string]
  | readonly ['error', string, string, string]
  | readonly ['pending']

export interface RealmApi {
  /** Start a run. `chain` is CALL_CHAIN joined by commas (keys never hold one); undefined: `[caller]`. */
  run(runId: number, source: string, caller: string, chain: string | undefined, circle: string, dbPath: string, s0: number, s1: number, s2: number, s3: number): RealmResult
  /**
   * The outcome of a run whose completion value was a promise. Still pending: with `waiting`
   * (calls of the run are in flight) the run is suspended — its state saved — and `['pending']`
   * returned; without, nothing can settle it any more and it ends with an error.
   */
  poll(runId: number, waiting: boolean): RealmResult
  /** Settle call `callId` of a suspended run with the callee's outcome (code null: `body` holds its value). */
  resume(runId: number, callId: number, code: string | null, message: string, body: string): void
  /** End a suspended run with an error (its time is up), keeping the lines it printed. */
  end(runId: number, code: string, message: string): RealmResult
}

/** The per-run values a script sees besides the frozen global object. */
const RUN_PARAMS = [
  'CALLER_PUBLIC_KEY',
  'CIRCLE_PUBLIC_KEY',
  'DB_PATH',
  'print',
  'load_data',
  'save_data',
  'list_data',
  'delete_data',
  'emit',
  'CALL_CHAIN',
  'call',
] as const

export const REALM_RUN_PARAMS: readonly string[] = RUN_PARAMS

export function realmBootstrap(hostCall: HostCall, limits: RealmLimits, runParams: readonly string[]): RealmApi {
  'use strict'
  const g = globalThis as unknown as Record<string | symbol, unknown>
  for (const name of ['SharedArrayBuffer', 'Atomics', 'WebAssembly', 'WeakRef', 'FinalizationRegistry', 'console']) {
    delete g[name]
  }
  const { freeze, getPrototypeOf, getOwnPropertyDescriptor, defineProperty } = Object
  const ownKeys = Reflect.ownKeys
  const apply = Reflect.apply
  // RegExp's legacy statics expose the last match of whatever ran before: freezing does not stop
  // the engine from updating them, so they go.
  const R = RegExp as unknown as Record<string | symbol, unknown>
  for (const key of ownKeys(RegExp)) {
    if (typeof key === 'string' && /^(\$.*|input|lastMatch|lastParen|leftContext|rightContext)$/.test(key)) delete R[key]
  }
  const stringify = JSON.stringify
  const parse = JSON.parse
  const NativePromise = Promise
  const promiseThen = Promise.prototype.then
  const hasOwn = Object.hasOwn
  const isArray = Array.isArray
  const isInteger = Number.isInteger
  const stringSplit = String.prototype.split
  const NativeString = String
  const NativeSymbol = Symbol
  const NativeError = Error
  const NativeFunction = Function
  const NativeMap = Map
  const NativeUint8Array = Uint8Array
  const isView = ArrayBuffer.isView
  const mapGet = Map.prototype.get
  const mapSet = Map.prototype.set
  const mapDelete = Map.prototype.delete
  const weakMapGet = WeakMap.prototype.get
  const weakMapSet = WeakMap.prototype.set
  const arrayPush = Array.prototype.push
  const arrayJoin = Array.prototype.join
  const stringSlice = String.prototype.slice
  const charCodeAt = String.prototype.charCodeAt
  const regexpTest = RegExp.prototype.test
  const typedArraySet = Uint8Array.prototype.set
  const typedArrayTag = getOwnPropertyDescriptor(getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!.get!
  const ASCII = /^[\u0000-\u007f]*$/
  const MAX_RANDOM_BYTES = 65536
  const MAX_REGISTERED_SYMBOLS = 10000
  const MAX_EVALUATORS = 256

  /** UTF-8 length of a string with no lone surrogates (JSON.stringify's output has none). */
  function utf8Length(text: string): number {
    if (apply(regexpTest, ASCII, [text])) return text.length
    let bytes = 0
    for (let i = 0; i < text.length; i++) {
      const c = apply(charCodeAt, text, [i]) as number
      if (c < 0x80) bytes += 1
      else if (c < 0x800) bytes += 2
      else if (c >= 0xd800 && c <= 0xdbff) {
        bytes += 4
        i++
      } else bytes += 3
    }
    return bytes
  }

  // --- Per-run random state -------------------------------------------------------------------
  // xoshiro128** seeded from the host's CSPRNG at the start of every run: a run can predict its
  // own draws at best, never another run's.
  let r0 = 1
  let r1 = 2
  let r2 = 3
  let r3 = 4
  function nextRandom(): number {
    const result = Math.imul(rotl(Math.imul(r1, 5), 7), 9) >>> 0
    const t = r1 << 9
    r2 ^= r0
    r3 ^= r1
    r1 ^= r2
    r0 ^= r3
    r2 ^= t
    r3 = rotl(r3, 11)
    return result
  }
  function rotl(x: number, k: number): number {
    return (x << k) | (x >>> (32 - k))
  }
  const M = Math as unknown as Record<string, unknown>
  M['random'] = function random(): number {
    // 53 random bits, as V8's own Math.random gives.
    const high = nextRandom() >>> 5
    const low = nextRandom() >>> 6
    return (high * 67108864 + low) / 9007199254740992
  }

  // --- Per-run Symbol registry ----------------------------------------------------------------
  let registry = new NativeMap<string, symbol>()
  let reverse = new NativeMap<symbol, string>()
  const S = Symbol as unknown as Record<string, unknown>
  S['for'] = function symbolFor(key: unknown): symbol {
    const name = NativeString(key)
    let symbol = apply(mapGet, registry, [name]) as symbol | undefined
    if (symbol === undefined) {
      if (registry.size >= MAX_REGISTERED_SYMBOLS) throw new RangeError('Symbol.for: too many registered symbols in one run')
      symbol = NativeSymbol(name)
      apply(mapSet, registry, [name, symbol])
      apply(mapSet, reverse, [symbol, name])
    }
    return symbol
  }
  S['keyFor'] = function keyFor(symbol: unknown): string | undefined {
    if (typeof symbol !== 'symbol') throw new TypeError(`${NativeString(symbol)} is not a symbol`)
    return apply(mapGet, reverse, [symbol]) as string | undefined
  }

  // --- crypto.getRandomValues, filled by the host's CSPRNG ----------------------------------
  let activeRun = 0
  const cryptoObject = {
    getRandomValues<T>(array: T): T {
      const tag = isView(array) ? (apply(typedArrayTag, array, []) as string | undefined) : undefined
      if (tag === undefined || tag === 'Float32Array' || tag === 'Float64Array' || tag === 'Float16Array') {
        throw new TypeError('crypto.getRandomValues: the argument must be an integer typed array')
      }
      const view = array as unknown as ArrayBufferView
      if (view.byteLength > MAX_RANDOM_BYTES) {
        throw new RangeError(`crypto.getRandomValues: at most ${MAX_RANDOM_BYTES} bytes at a time`)
      }
      const answer = hostCall('random', activeRun, view.byteLength)
      if (!answer[0]) throw hostError(answer[1], answer[2])
      apply(typedArraySet, new NativeUint8Array(view.buffer, view.byteOffset, view.byteLength), [new NativeUint8Array(answer[1] as ArrayBuffer)])
      return array
    },
    randomUUID(): string {
      const bytes = cryptoObject.getRandomValues(new NativeUint8Array(16))
      bytes[6] = (bytes[6]! & 0x0f) | 0x40
      bytes[8] = (bytes[8]! & 0x3f) | 0x80
      let hex = ''
      for (let i = 0; i < 16; i++) {
        hex += (bytes[i]! < 16 ? '0' : '') + bytes[i]!.toString(16)
        if (i === 3 || i === 5 || i === 7 || i === 9) hex += '-'
      }
      return hex
    },
  }
  defineProperty(g, 'crypto', { value: cryptoObject, writable: false, enumerable: false, configurable: false })

  // --- The override mistake -----------------------------------------------------------------
  function enable(obj: object, key: string): void {
    const desc = getOwnPropertyDescriptor(obj, key)
    if (!desc || !('value' in desc) || !desc.configurable) return
    const value: unknown = desc.value
    defineProperty(obj, key, {
      get() {
        return value
      },
      set(this: object, next: unknown) {
        if (this === obj) throw new TypeError(`Cannot assign to read only property ${NativeString(key)}`)
        defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true })
      },
      enumerable: desc.enumerable === true,
      configurable: false,
    })
  }
  const errorCtors = [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]
  for (const key of ['constructor', 'toString', 'valueOf', 'toLocaleString', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']) {
    enable(Object.prototype, key)
  }
  for (const key of ['constructor', 'toString']) enable(Function.prototype, key)
  for (const Ctor of errorCtors) for (const key of ['constructor', 'name', 'message', 'toString']) enable(Ctor.prototype, key)
  for (const key of ['constructor', 'toString', 'push', 'join']) enable(Array.prototype, key)

  // --- Deep freeze --------------------------------------------------------------------------
  const roots: unknown[] = [
    g,
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf((function* () {})()),
    getPrototypeOf((async function* () {})()),
    getPrototypeOf([][Symbol.iterator]()),
    getPrototypeOf(new Map()[Symbol.iterator]()),
    getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(''[Symbol.iterator]()),
    getPrototypeOf(/a/[Symbol.matchAll]('a')),
    // A strict arguments object: its `callee` accessor is the %ThrowTypeError% intrinsic.
    (function () {
      return arguments
    })(),
  ]
  const I = (g as { Intl?: { Segmenter?: new () => { segment(s: string): Iterable<unknown> } } }).Intl
  if (I !== undefined && typeof I.Segmenter === 'function') {
    const segments = new I.Segmenter().segment('a')
    roots.push(getPrototypeOf(segments), getPrototypeOf(segments[Symbol.iterator]()))
  }
  const frozen = new WeakSet<object>()
  const stack = roots
  while (stack.length > 0) {
    const obj = stack.pop()
    if ((typeof obj !== 'object' && typeof obj !== 'function') || obj === null || frozen.has(obj)) continue
    frozen.add(obj)
    freeze(obj)
    stack.push(getPrototypeOf(obj))
    for (const key of ownKeys(obj)) {
      const desc = getOwnPropertyDescriptor(obj, key)
      if (desc === undefined) continue
      if ('value' in desc) stack.push(desc.value)
      else stack.push(desc.get, desc.set)
    }
  }

  // --- Evaluation ----------------------------------------------------------------------------
  type Evaluate = (...args: unknown[]) => unknown
  // One evaluator per circle (see 3. above), the most recently used kept.
  const evaluators = new NativeMap<string, Evaluate>()
  function evaluatorFor(circle: string): Evaluate {
    let evaluate = apply(mapGet, evaluators, [circle]) as Evaluate | undefined
    if (evaluate !== undefined) {
      apply(mapDelete, evaluators, [circle])
    } else {
      const body = `'use strict'; /* ${circle} */ return eval(arguments[${runParams.length}]);`
      evaluate = new NativeFunction(...runParams, body) as Evaluate
      if (evaluators.size >= MAX_EVALUATORS) apply(mapDelete, evaluators, [evaluators.keys().next().value as string])
    }
    apply(mapSet, evaluators, [circle, evaluate])
    return evaluate
  }

  const hostCodes = new WeakMap<object, string>()
  function hostError(code: string, message: string): Error {
    const error = new NativeError(message)
    defineProperty(error, 'code', { value: code, enumerable: true })
    apply(weakMapSet, hostCodes, [error, code])
    return error
  }

  function describe(error: unknown): string {
    try {
      if (error !== null && typeof error === 'object') {
        const { message, name } = error as { message?: unknown; name?: unknown }
        if (typeof message === 'string') return (typeof name === 'string' && name !== '' ? `${name}: ` : '') + message
      }
      return NativeString(error)
    } catch {
      return 'uncaught exception that cannot be printed'
    }
  }

  interface RunState {
    /** Encoded lines (JSON strings), ready to join. */
    readonly lines: string[]
    /** UTF-8 bytes of the logs array `[…]` so far, brackets included (the bound is on the value of the `logs` member). */
    bytes: number
    truncated: boolean
  }

  const LOGS_OVERHEAD = 2 // the brackets of the logs array

  function logsBody(state: RunState): string {
    return `"logs":[${apply(arrayJoin, state.lines, [',']) as string}]${state.truncated ? ',"logs_truncated":true' : ''}`
  }

  function errorResult(code: string, message: string, state: RunState): RealmResult {
    return ['error', code, apply(stringSlice, message, [0, 2000]) as string, logsBody(state)]
  }

  function failure(error: unknown, state: RunState): RealmResult {
    const code = error !== null && typeof error === 'object' ? (apply(weakMapGet, hostCodes, [error]) as string | undefined) : undefined
    if (code === undefined) return errorResult('SCRIPT_ERROR', describe(error), state)
    // An uncaught storage error keeps its own code and message (no "Error: " prefix).
    let message: unknown
    try {
      message = (error as { message?: unknown }).message
    } catch {
      message = undefined
    }
    return errorResult(code, typeof message === 'string' ? message : describe(error), state)
  }

  function tooLarge(state: RunState): RealmResult {
    return errorResult('OUTPUT_TOO_LARGE', `The result is over ${limits.maxOutputBytes} bytes (UTF-8, as sent)`, state)
  }

  function success(value: unknown, state: RunState): RealmResult {
    // The bound is on bytes; a string's UTF-8 size is at least its length, so longer ones are
    // refused before anything is encoded.
    let members: string
    if (typeof value === 'string' || typeof value === 'bigint') {
      const text = typeof value === 'string' ? value : NativeString(value)
      if (text.length > limits.maxOutputBytes) return tooLarge(state)
      members = `"output":${stringify(text)}`
    } else {
      let json: string | undefined
      try {
        json = stringify(value)
      } catch (error) {
        return errorResult('OUTPUT_TOO_LARGE', `The result is not JSON-serialisable: ${describe(error)}`, state)
      }
      if (json === undefined) members = '"output":"","result":null'
      else {
        if (json.length * 2 > limits.maxOutputBytes) return tooLarge(state)
        members = `"output":${stringify(json)},"result":${json}`
      }
    }
    if (utf8Length(members) > limits.maxOutputBytes) return tooLarge(state)
    return ['ok', `${members},${logsBody(state)}`]
  }

  function toLine(args: readonly unknown[]): string {
    let line = ''
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]
      let text: string | undefined
      if (typeof arg === 'string') text = arg
      else {
        try {
          text = stringify(arg)
        } catch {
          text = undefined
        }
        if (text === undefined) text = NativeString(arg)
      }
      line += (i === 0 ? '' : ' ') + text
      if (line.length > limits.maxLogBytes) break
    }
    return line
  }

  /** One line of `logs`. Every line costs its encoded bytes plus a separator, so empty lines are not free, and the number of lines is bounded as well. */
  function appendLine(state: RunState, line: string): void {
    if (state.truncated) return
    if (state.lines.length >= limits.maxLogLines || line.length + state.bytes > limits.maxLogBytes) {
      state.truncated = true
      return
    }
    const encoded = stringify(line)
    const cost = utf8Length(encoded) + (state.lines.length === 0 ? 0 : 1)
    if (state.bytes + cost > limits.maxLogBytes) {
      state.truncated = true
      return
    }
    state.bytes += cost
    apply(arrayPush, state.lines, [encoded])
  }

  type Settle = readonly [resolve: (value: unknown) => void, reject: (error: unknown) => void]

  /** A run whose completion value is a promise (or that called out): what outlives its first slice. */
  interface RunRecord {
    readonly state: RunState
    status: 'pending' | 'fulfilled' | 'rejected'
    value: unknown
    /** Calls in flight: id → how to settle the promise `call` returned. */
    readonly calls: Map<number, Settle>
    // The run's engine state while it is suspended (see "A run that awaits a call").
    s0: number
    s1: number
    s2: number
    s3: number
    registry: Map<string, symbol>
    reverse: Map<symbol, string>
  }
  /** Runs whose outcome is pending: at most those the host has suspended, plus the one running. */
  const records = new NativeMap<number, RunRecord>()
  const MAX_TIMEOUT_MS = 2147483647

  function ignore(): void {}

  /**
   * A call's promise. It is marked handled: a rejection the script never looks at is dropped
   * with the call (as its result would be), not reported as unhandled — which would end the
   * script's whole slice as if it had been aborted.
   */
  function callPromise(executor: (resolve: (value: unknown) => void, reject: (error: unknown) => void) => void): Promise<unknown> {
    const promise = new NativePromise(executor)
    apply(promiseThen, promise, [undefined, ignore])
    return promise
  }

  function refusedCall(code: string, message: string): Promise<unknown> {
    return callPromise((_, reject) => reject(hostError(code, message)))
  }

  function callError(message: string): Promise<unknown> {
    return refusedCall('INVALID_PARAMS', message)
  }

  function run(runId: number, source: string, caller: string, chain: string | undefined, circle: string, dbPath: string, s0: number, s1: number, s2: number, s3: number): RealmResult {
    activeRun = runId
    r0 = s0 | 1
    r1 = s1
    r2 = s2
    r3 = s3
    registry = new NativeMap()
    reverse = new NativeMap()
    const state: RunState = { lines: [], bytes: LOGS_OVERHEAD, truncated: false }
    let record: RunRecord | undefined
    const recordOf = (): RunRecord =>
      (record ??= { state, status: 'pending', value: undefined, calls: new NativeMap(), s0: 0, s1: 0, s2: 0, s3: 0, registry, reverse })
    function host(op: string, a?: unknown, b?: unknown): unknown {
      const answer = hostCall(op, runId, a, b)
      if (answer[0]) return answer[1]
      throw hostError(answer[1], answer[2])
    }
    function checkName(name: unknown, fn: string): void {
      if (typeof name !== 'string') throw hostError('INVALID_NAME', `${fn}: document name must be a string`)
    }
    const print = (...args: unknown[]): void => {
      if (!state.truncated) appendLine(state, toLine(args))
    }
    const load_data = (name: unknown): unknown => {
      checkName(name, 'load_data')
      const text = host('load', name) as string | null
      return text === null ? null : parse(text)
    }
    const save_data = (name: unknown, value: unknown): void => {
      checkName(name, 'save_data')
      let text: string | undefined
      try {
        text = stringify(value)
      } catch (error) {
        throw hostError('INVALID_DOCUMENT', `save_data: value is not JSON-serialisable: ${describe(error)}`)
      }
      if (text === undefined) throw hostError('INVALID_DOCUMENT', 'save_data: value is not JSON-serialisable')
      host('save', name, text)
    }
    const list_data = (prefix?: unknown, options?: unknown): string[] => {
      if (prefix === undefined) prefix = ''
      if (typeof prefix !== 'string') throw hostError('INVALID_NAME', 'list_data: prefix must be a string')
      if (options === undefined) return host('list', prefix) as string[]
      if (options === null || typeof options !== 'object') throw hostError('INVALID_NAME', 'list_data: options must be an object { limit?, after? }')
      // A plain copy of the options' own values (the host checks keys and values): a getter or a
      // proxy runs here, in the script's run, never on the host.
      const copy: Record<string, unknown> = {}
      const keys = ownKeys(options)
      if (keys.length > 8) throw hostError('INVALID_NAME', 'list_data: options must be { limit?, after? }')
      for (const key of keys) {
        if (typeof key !== 'string') throw hostError('INVALID_NAME', 'list_data: options must be { limit?, after? }')
        const value = (options as Record<string, unknown>)[key]
        if (value !== undefined && typeof value !== 'number' && typeof value !== 'string') {
          throw hostError('INVALID_NAME', `list_data: option "${key.slice(0, 32)}" must be a number or a string`)
        }
        if (value !== undefined) copy[key] = value
      }
      return host('list', prefix, copy) as string[]
    }
    const delete_data = (name: unknown): boolean => {
      checkName(name, 'delete_data')
      return host('delete', name) as boolean
    }
    // An event for the context's watchers, stored nowhere; the host checks the topic and the run's budget.
    const emit = (topic: unknown, value?: unknown): void => {
      if (typeof topic !== 'string') throw hostError('INVALID_NAME', 'emit: the topic must be a string')
      let text: string | undefined
      try {
        text = value === undefined ? 'null' : stringify(value)
      } catch (error) {
        throw hostError('INVALID_DOCUMENT', `emit: value is not JSON-serialisable: ${describe(error)}`)
      }
      if (text === undefined) throw hostError('INVALID_DOCUMENT', 'emit: value is not JSON-serialisable')
      host('emit', topic, text)
    }
    // Arguments are checked here, where a getter or a proxy runs as the script's own code; the
    // host checks what it is handed again.
    const call = (peer: unknown, script: unknown, options?: unknown): Promise<unknown> => {
      if (typeof peer !== 'string') return callError('call: peer must be a public key (a hex string)')
      if (typeof script !== 'string') return callError('call: script must be a string')
      let timeoutMs = 0
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') return callError('call: options must be an object { timeout_ms? }')
        const keys = ownKeys(options)
        for (let i = 0; i < keys.length; i++) {
          if (keys[i] !== 'timeout_ms') return callError('call: the only option is timeout_ms')
        }
        const timeout = (options as { timeout_ms?: unknown }).timeout_ms
        if (timeout !== undefined) {
          if (typeof timeout !== 'number' || !isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
            return callError('call: timeout_ms must be a positive integer')
          }
          timeoutMs = timeout
        }
      }
      const answer = hostCall('call', runId, peer, script, timeoutMs)
      if (!answer[0]) return refusedCall(answer[1], answer[2])
      const calls = recordOf().calls
      return callPromise((resolve, reject) => {
        apply(mapSet, calls, [answer[1] as number, [resolve, reject]])
      })
    }
    const CALL_CHAIN = freeze(chain === undefined ? [caller] : (apply(stringSplit, chain, [',']) as string[]))
    let value: unknown
    try {
      value = evaluatorFor(circle)(caller, circle, dbPath, print, load_data, save_data, list_data, delete_data, emit, CALL_CHAIN, call, source)
    } catch (error) {
      return failure(error, state)
    }
    if (value instanceof NativePromise) {
      const pending = recordOf()
      apply(mapSet, records, [runId, pending])
      try {
        apply(promiseThen, value, [
          (v: unknown) => {
            pending.status = 'fulfilled'
            pending.value = v
          },
          (e: unknown) => {
            pending.status = 'rejected'
            pending.value = e
          },
        ])
      } catch (error) {
        apply(mapDelete, records, [runId])
        return failure(error, state)
      }
      return ['pending']
    }
    return success(value, state)
  }

  function poll(runId: number, waiting: boolean): RealmResult {
    const record = apply(mapGet, records, [runId]) as RunRecord | undefined
    if (record === undefined) return errorResult('SCRIPT_ERROR', 'internal: no pending promise', { lines: [], bytes: LOGS_OVERHEAD, truncated: false })
    if (record.status === 'pending' && waiting) {
      record.s0 = r0
      record.s1 = r1
      record.s2 = r2
      record.s3 = r3
      record.registry = registry
      record.reverse = reverse
      return ['pending']
    }
    apply(mapDelete, records, [runId])
    if (record.status === 'fulfilled') return success(record.value, record.state)
    if (record.status === 'rejected') return failure(record.value, record.state)
    return errorResult(
      'SCRIPT_ERROR',
      'The script returned a promise that never settled (the sandbox has no timers or I/O to wait for, and no call of the run was in flight)',
      record.state,
    )
  }

  function resume(runId: number, callId: number, code: string | null, message: string, body: string): void {
    const record = apply(mapGet, records, [runId]) as RunRecord | undefined
    if (record === undefined) return
    activeRun = runId
    r0 = record.s0
    r1 = record.s1
    r2 = record.s2
    r3 = record.s3
    registry = record.registry
    reverse = record.reverse
    const settle = apply(mapGet, record.calls, [callId]) as Settle | undefined
    if (settle === undefined) return
    apply(mapDelete, record.calls, [callId])
    // The callee's answer as a client reads it: its value, and its print lines (which join the
    // caller's, under the caller's limits).
    let answer: { output?: unknown; result?: unknown; logs?: unknown; logs_truncated?: unknown }
    try {
      answer = parse(`{${body}}`) as typeof answer
    } catch {
      answer = {}
    }
    const logs = answer.logs
    if (isArray(logs)) for (let i = 0; i < logs.length; i++) appendLine(record.state, typeof logs[i] === 'string' ? (logs[i] as string) : '')
    if (answer.logs_truncated === true) record.state.truncated = true
    if (code === null) settle[0](hasOwn(answer, 'result') ? answer.result : answer.output)
    else settle[1](hostError(code, message))
  }

  function end(runId: number, code: string, message: string): RealmResult {
    const record = apply(mapGet, records, [runId]) as RunRecord | undefined
    apply(mapDelete, records, [runId])
    return errorResult(code, message, record === undefined ? { lines: [], bytes: LOGS_OVERHEAD, truncated: false } : record.state)
  }

  return { run, poll, resume, end }
}

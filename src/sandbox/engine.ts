import ivm from 'isolated-vm'
import { randomFillSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { DEFAULTS } from '../config/defaults.js'
import { isCirclesError, isErrorCode } from '../errors/index.js'
import { EffectRecorder, type EffectLimits, type WriteLedger } from '../live/index.js'
import { failedRun, scriptSizeError, type RunOutcome } from '../protocol/index.js'
import { REALM_RUN_PARAMS, realmBootstrap, type HostAnswer, type RealmApi, type RealmLimits, type RealmResult } from './realm-bootstrap.js'
import type { RunRequest } from './run.js'

/** A namespace as a run sees it: the storage functions' host side. */
export interface RunStore {
  /** The document's JSON text, or null. */
  read(name: unknown): string | null
  write(name: unknown, text: string): void
  /** True when the document existed. */
  remove(name: unknown): boolean
  /** A page of names: `options` is the script's `{ limit, after }` (checked by the store). */
  list(prefix: unknown, options: unknown): string[]
}

/** What one run needs from its context, besides the request. */
export interface RunContext {
  readonly circle: string
  /** `DB_PATH` as the script sees it: the namespace's path relative to the database root. */
  readonly dbPathLabel: string
  readonly store: RunStore
  readonly cpuMs: number
  /** Calls a run may have in flight at once. */
  readonly maxCallsInFlight: number
  /** Largest script a run may pass to `call`. */
  readonly maxScriptBytes: number
  /** Bounds on what a run emits and reports to the context's watchers. */
  readonly effects: EffectLimits
  /** The namespace's writes in the order they reached it (shared by every run of the context on this thread). */
  readonly ledger: WriteLedger
}

export type EngineOptions = RealmLimits & {
  readonly memoryMb: number
  /** Contexts kept for suspended runs after an abort (default DEFAULTS.MAX_RETIRED_CONTEXTS). */
  readonly maxRetiredContexts?: number
  /** The source of per-run `Math.random` seeds (default: the CSPRNG); tests make it repeatable. */
  readonly seeds?: (into: Uint32Array) => void
}

/** A call a run started, as the host hands it on to the node. */
export interface OutgoingCall {
  /** Numbers the run's calls from 1. */
  readonly id: number
  readonly peer: string
  readonly script: string
  /** `options.timeout_ms`; 0 when not given. */
  readonly timeoutMs: number
}

/** How a call settled: the callee's outcome, or the error that refused it (the fields of a {@link RunOutcome}). */
export type CallSettlement = Pick<RunOutcome, 'code' | 'message' | 'body'>

/**
 * How a slice of a run ended: the run is done, or it is suspended until one of its calls
 * settles — `calls` started in this slice, to hand on, and the run's time left.
 */
export type Slice =
  | { readonly type: 'done'; readonly outcome: RunOutcome }
  | { readonly type: 'suspended'; readonly calls: readonly OutgoingCall[]; readonly remainingMs: number }

/** A prepared context (see realm-bootstrap.ts) and the runs suspended in it. */
interface Realm {
  readonly context: ivm.Context
  readonly run: ivm.Reference<RealmApi['run']>
  readonly poll: ivm.Reference<RealmApi['poll']>
  readonly resume: ivm.Reference<RealmApi['resume']>
  readonly end: ivm.Reference<RealmApi['end']>
  /** Suspended runs that live in this context. */
  live: number
  released: boolean
}

/** A run between its first slice and its outcome. */
interface LiveRun {
  readonly id: number
  /** The caller's name for the run (the worker's sequence number of its first message). */
  readonly key: number
  readonly ctx: RunContext
  readonly canWrite: boolean
  readonly canCall: boolean
  readonly timeoutMs: number
  readonly realm: Realm
  readonly startedAt: number
  readonly deadline: number
  cpuMs: number
  /** Wall time spent suspended, waiting on calls. */
  callsMs: number
  suspendedAt: number
  /** Calls started and not settled. */
  inFlight: number
  lastCallId: number
  /** Calls started in the slice running now. */
  started: OutgoingCall[]
  /** Its committed writes and emitted events so far, across its slices: reported with its outcome. */
  readonly effects: EffectRecorder
}

const TIMED_OUT = 'Script execution timed out.'
// A loader that keeps function names (esbuild's, running these sources under the tests) wraps
// functions in calls to a helper of the module: give the bootstrap a do-nothing one of its own.
const BOOTSTRAP_SOURCE = `((__name) => (${realmBootstrap.toString()}))((fn) => fn)`
const SEED_POOL_BYTES = 4096
/** Time the microtasks an aborted run left queued get before they are dropped (see recover). */
const FLUSH_TIMEOUT_MS = 5
/** Bound of the host's own short calls into a context (ending a suspended run). */
const HOUSEKEEPING_TIMEOUT_MS = 100
/** No key form is longer (0x + 130 hex): a longer peer is refused before it is copied anywhere. */
const MAX_PEER_CHARS = 132
const FORBIDDEN = (fn: string): HostAnswer => [false, 'FORBIDDEN', `${fn}: the circle's policy does not let this caller write`]
const INTERRUPTED = 'The run was waiting on a call when another run on its sandbox thread was aborted, and the state it was suspended in went with it'

function cryptoSeeds(into: Uint32Array): void {
  randomFillSync(into)
}

/**
 * The outcome of a run that is over, however it ended, with the effects of all its slices (a
 * failed run's committed writes included): taken once, so each is reported once.
 */
function withEffects(run: LiveRun, outcome: RunOutcome): RunOutcome {
  const effects = run.effects.take()
  return effects === undefined ? outcome : { ...outcome, effects }
}

function ended(run: LiveRun, outcome: RunOutcome): Slice {
  return { type: 'done', outcome: withEffects(run, outcome) }
}

/**
 * One isolate with one prepared context, reused by every run on this thread (see
 * realm-bootstrap.ts for why that is safe). A run that times out or exhausts memory gets a fresh
 * context (or isolate) before the next run, so nothing it left half-done can leak.
 *
 * A run that awaits a `call` is suspended between slices and lives on in the context while
 * others run. An abort then does not take the context from under it: a context that still holds
 * suspended runs is *retired* — they finish in it, no new run starts there — and a fresh one
 * serves new runs. Only when the isolate itself goes (memory), or more than
 * `maxRetiredContexts` are retired, do suspended runs end RUN_INTERRUPTED.
 */
export class Engine {
  private readonly options: EngineOptions
  private readonly maxRetired: number
  private isolate!: ivm.Isolate
  private realm!: Realm
  private retired: Realm[] = []
  private active: LiveRun | undefined
  private readonly suspended = new Map<number, LiveRun>()
  private interrupted: (readonly [number, RunOutcome])[] = []
  private nextRunId = 1
  private readonly seedSource: (into: Uint32Array) => void
  /** Seeds handed out 16 bytes at a time as per-run `Math.random` seeds. */
  private readonly seeds = new Uint32Array(SEED_POOL_BYTES / 4)
  private seedAt = this.seeds.length
  /** Contexts and isolates built so far. */
  rebuilds = 0
  /**
   * Whether the last slice tried to change its namespace (save_data / delete_data, even one that
   * failed): its outcome must reach the node before the next run starts.
   */
  changed = false

  constructor(options: EngineOptions) {
    this.options = options
    this.maxRetired = options.maxRetiredContexts ?? DEFAULTS.MAX_RETIRED_CONTEXTS
    this.seedSource = options.seeds ?? cryptoSeeds
    this.buildIsolate()
  }

  /** Runs suspended now, waiting on calls. */
  get waiting(): number {
    return this.suspended.size
  }

  private buildIsolate(): void {
    this.isolate = new ivm.Isolate({ memoryLimit: this.options.memoryMb })
    this.retired = []
    this.realm = this.buildRealm()
  }

  private buildRealm(): Realm {
    this.rebuilds++
    const context = this.isolate.createContextSync()
    const boot = context.evalSync(BOOTSTRAP_SOURCE, { reference: true }) as ivm.Reference<typeof realmBootstrap>
    const limits: RealmLimits = {
      maxOutputBytes: this.options.maxOutputBytes,
      maxLogBytes: this.options.maxLogBytes,
      maxLogLines: this.options.maxLogLines,
    }
    const args = [new ivm.Callback(this.hostCall), new ivm.ExternalCopy(limits).copyInto(), new ivm.ExternalCopy(REALM_RUN_PARAMS).copyInto()]
    const api = boot.applySync(undefined, args as never, {
      result: { reference: true },
    }) as unknown as ivm.Reference<RealmApi>
    const get = <K extends keyof RealmApi>(name: K) => api.getSync(name, { reference: true }) as unknown as ivm.Reference<RealmApi[K]>
    const realm: Realm = { context, run: get('run'), poll: get('poll'), resume: get('resume'), end: get('end'), live: 0, released: false }
    boot.release()
    api.release()
    return realm
  }

  private release(realm: Realm): void {
    if (realm.released) return
    realm.released = true
    if (!this.isolate.isDisposed) realm.context.release()
  }

  /**
   * After an abort in `realm`: drain what the aborted run left queued, and never start a run in
   * that context again. A run stopped in its synchronous part leaves the microtasks it queued in
   * the isolate's queue, not the context's: the next script evaluated — a new context's
   * bootstrap, which has no time limit — would run them first, and one endless microtask would
   * hang this thread for good. A microtask checkpoint that is terminated clears the queue.
   */
  private recover(realm: Realm): void {
    if (this.isolate.isDisposed) return this.restart()
    for (let attempt = 0; ; attempt++) {
      try {
        this.realm.context.evalSync('0', { timeout: FLUSH_TIMEOUT_MS })
        break
      } catch {
        if (attempt === 0) continue
        // Still running out of time with the queue cleared: start from a new isolate.
        this.isolate.dispose()
        return this.restart()
      }
    }
    if (realm === this.realm) {
      if (realm.live > 0) this.retired.push(realm)
      else this.release(realm)
      this.realm = this.buildRealm()
    } else if (realm.live === 0) {
      this.dropRetired(realm)
    }
    while (this.retired.length > this.maxRetired) {
      const oldest = this.retired.shift()!
      this.interrupt((run) => run.realm === oldest)
      this.release(oldest)
    }
  }

  /** The isolate is gone (or beyond use): every suspended run goes with it. */
  private restart(): void {
    this.interrupt(() => true)
    if (!this.isolate.isDisposed) this.isolate.dispose()
    this.buildIsolate()
  }

  private interrupt(which: (run: LiveRun) => boolean): void {
    const now = performance.now()
    for (const run of this.suspended.values()) {
      if (!which(run)) continue
      this.forget(run)
      // What it wrote before it was suspended is on disk: its watchers are told with its outcome.
      this.interrupted.push([run.key, withEffects(run, failedRun('RUN_INTERRUPTED', INTERRUPTED, now - run.startedAt, run.cpuMs, run.callsMs + now - run.suspendedAt))])
    }
  }

  private dropRetired(realm: Realm): void {
    const at = this.retired.indexOf(realm)
    if (at >= 0) this.retired.splice(at, 1)
    this.release(realm)
  }

  /** Runs that lost their context to another run's abort since the last call, with their outcomes. */
  takeInterrupted(): readonly (readonly [number, RunOutcome])[] {
    if (this.interrupted.length === 0) return this.interrupted
    const taken = this.interrupted
    this.interrupted = []
    return taken
  }

  /** Called synchronously from inside the isolate by the storage functions (and `call`) of a run. */
  private readonly hostCall = (op: string, runId: number, a: unknown, b: unknown, c: unknown): HostAnswer => {
    const run = this.active
    if (run === undefined || run.id !== runId) return [false, 'SCRIPT_ERROR', 'storage functions of a finished run cannot be called']
    const { store } = run.ctx
    try {
      switch (op) {
        case 'load':
          return [true, store.read(a)]
        case 'list':
          return [true, store.list(a, b)]
        case 'save':
          if (!run.canWrite) return FORBIDDEN('save_data')
          if (typeof b !== 'string') return [false, 'INVALID_DOCUMENT', 'save_data: value is not JSON-serialisable']
          this.changed = true
          this.committing(run, () => store.write(a, b))
          run.effects.saved(a as string, b)
          return [true, null]
        case 'delete': {
          if (!run.canWrite) return FORBIDDEN('delete_data')
          this.changed = true
          const existed = this.committing(run, () => store.remove(a))
          if (existed) run.effects.deleted(a as string)
          return [true, existed]
        }
        case 'emit':
          if (typeof b !== 'string') return [false, 'INVALID_DOCUMENT', 'emit: value is not JSON-serialisable']
          run.effects.emit(a, b)
          return [true, null]
        case 'random': {
          const bytes = new Uint8Array(Math.max(0, Math.min(65536, Number(a) | 0)))
          randomFillSync(bytes)
          return [true, new ivm.ExternalCopy(bytes.buffer).copyInto()]
        }
        case 'call':
          return this.startCall(run, a, b, c)
        default:
          return [false, 'SCRIPT_ERROR', 'unknown storage operation']
      }
    } catch (error) {
      if (isCirclesError(error)) return [false, error.code, error.message]
      return [false, 'STORAGE_ERROR', 'storage failed']
    }
  }

  /** `call(peer, script, options)`: what the host can decide alone; the node judges the rest. */
  private startCall(run: LiveRun, peer: unknown, script: unknown, timeoutMs: unknown): HostAnswer {
    if (!run.canCall) return [false, 'FORBIDDEN', "call: the circle's policy does not let this caller's scripts call other contexts"]
    const max = run.ctx.maxCallsInFlight
    if (run.inFlight >= max) return [false, 'CALL_BUDGET_EXCEEDED', `call: at most ${max} calls in flight per run`]
    if (typeof peer !== 'string' || peer.length > MAX_PEER_CHARS) return [false, 'INVALID_PUBLIC_KEY', 'call: peer is not a public key']
    if (typeof script !== 'string') return [false, 'INVALID_PARAMS', 'call: script must be a string']
    const tooLarge = scriptSizeError(script, run.ctx.maxScriptBytes, 'call')
    if (tooLarge !== undefined) return [false, tooLarge.code, tooLarge.message]
    const timeout = typeof timeoutMs === 'number' && Number.isInteger(timeoutMs) && timeoutMs > 0 ? timeoutMs : 0
    const id = ++run.lastCallId
    run.inFlight++
    run.started.push({ id, peer, script, timeoutMs: timeout })
    return [true, id]
  }

  /**
   * A write or delete. Refusals before the disk is touched (quota, name) leave nothing to report;
   * any other failure may have happened after the change landed, so the run's watchers are told
   * to read again rather than be told nothing.
   */
  private committing<T>(run: LiveRun, write: () => T): T {
    try {
      return write()
    } catch (error) {
      if (!isCirclesError(error) || (error.code !== 'QUOTA_EXCEEDED' && error.code !== 'INVALID_NAME')) run.effects.uncertain()
      throw error
    }
  }

  private seed(): number {
    if (this.seedAt >= this.seeds.length) {
      this.seedSource(this.seeds)
      this.seedAt = 0
    }
    return this.seeds[this.seedAt++]!
  }

  /**
   * Run one script to completion, to its limit, or until it waits on calls (then `resume` it
   * with each call's settlement). `key` names the run in later calls. Never throws.
   */
  start(key: number, request: RunRequest, ctx: RunContext): Slice {
    const startedAt = performance.now()
    const run: LiveRun = {
      id: this.nextRunId++,
      key,
      ctx,
      canWrite: request.canWrite,
      canCall: request.canCall,
      timeoutMs: request.timeoutMs,
      realm: this.realm,
      startedAt,
      deadline: startedAt + request.timeoutMs,
      cpuMs: 0,
      callsMs: 0,
      suspendedAt: 0,
      inFlight: 0,
      lastCallId: 0,
      started: [],
      effects: new EffectRecorder(ctx.effects, ctx.ledger),
    }
    const chain = request.chain === undefined ? undefined : request.chain.join(',')
    return this.slice(run, (realm, timeout) => {
      const raw = realm.run.applySync(
        undefined,
        [run.id, request.script, request.caller, chain, ctx.circle, ctx.dbPathLabel, this.seed(), this.seed(), this.seed(), this.seed()],
        { timeout: timeout(), result: { copy: true } },
      ) as unknown as RealmResult
      return raw[0] === 'pending' ? this.poll(run, timeout) : raw
    })
  }

  /** Settle call `callId` of suspended run `key` and run it on; undefined when no such run is suspended. */
  resume(key: number, callId: number, settlement: CallSettlement): Slice | undefined {
    const run = this.suspended.get(key)
    if (run === undefined) return undefined
    run.inFlight--
    run.callsMs += performance.now() - run.suspendedAt
    return this.slice(run, (realm, timeout) => {
      realm.resume.applySync(undefined, [run.id, callId, settlement.code, settlement.message, settlement.body], { timeout: timeout() })
      return this.poll(run, timeout)
    })
  }

  /** End suspended run `key` now: its time is up. Undefined when no such run is suspended. */
  expire(key: number): Slice | undefined {
    const run = this.suspended.get(key)
    if (run === undefined) return undefined
    run.callsMs += performance.now() - run.suspendedAt
    this.changed = false
    return this.timedOut(run, `The script ran past its time limit (${run.timeoutMs} ms)`)
  }

  private poll(run: LiveRun, timeout: () => number): RealmResult {
    // `inFlight` is read after the microtasks of the last call ran: they may have started calls.
    return run.realm.poll.applySync(undefined, [run.id, run.inFlight > 0], { timeout: timeout(), result: { copy: true } }) as unknown as RealmResult
  }

  /** End a suspended run with SCRIPT_TIMEOUT, keeping the lines it printed. */
  private timedOut(run: LiveRun, message: string): Slice {
    this.forget(run)
    let raw: RealmResult
    try {
      raw = run.realm.end.applySync(undefined, [run.id, 'SCRIPT_TIMEOUT', message], { timeout: HOUSEKEEPING_TIMEOUT_MS, result: { copy: true } }) as unknown as RealmResult
    } catch {
      raw = ['error', 'SCRIPT_TIMEOUT', message, '"logs":[]']
    }
    return this.done(run, raw)
  }

  private slice(run: LiveRun, body: (realm: Realm, timeout: () => number) => RealmResult): Slice {
    this.changed = false
    if (run.deadline <= performance.now()) return this.timedOut(run, `The script ran past its time limit (${run.timeoutMs} ms)`)
    this.active = run
    run.started = []
    const cpuBefore = this.isolate.cpuTime
    // Each call into the isolate gets the run's time left, whole milliseconds, at least one.
    const timeout = () => Math.max(1, Math.ceil(run.deadline - performance.now()))
    let raw: RealmResult
    try {
      raw = body(run.realm, timeout)
    } catch (error) {
      this.active = undefined
      const memory = this.isolate.isDisposed
      const runMs = performance.now() - run.startedAt
      run.cpuMs += memory ? 0 : Number(this.isolate.cpuTime - cpuBefore) / 1e6
      // Its context is dealt with by recover, which needs it alive to decide.
      this.forget(run, false)
      this.recover(run.realm)
      if (memory) return ended(run, failedRun('SCRIPT_MEMORY', `The script ran past its memory limit (${this.options.memoryMb} MB)`, runMs, runMs, run.callsMs))
      if ((error as Error).message === TIMED_OUT) {
        return ended(run, failedRun('SCRIPT_TIMEOUT', `The script ran past its time limit (${run.timeoutMs} ms)`, runMs, run.cpuMs, run.callsMs))
      }
      // What else escapes a call into the realm: a promise the script rejected and never handled,
      // thrown by the isolate once the call's microtasks ran (the realm catches the script's own throws).
      return ended(run, failedRun('SCRIPT_ERROR', `Unhandled promise rejection: ${reasonOf(error)}`, runMs, run.cpuMs, run.callsMs))
    }
    this.active = undefined
    run.cpuMs += Number(this.isolate.cpuTime - cpuBefore) / 1e6
    if (run.cpuMs > run.ctx.cpuMs) {
      const message = `The script ran past its CPU time limit (${run.ctx.cpuMs} ms)`
      if (raw[0] === 'pending') return this.timedOut(run, message)
      this.forget(run)
      return ended(run, failedRun('SCRIPT_TIMEOUT', message, performance.now() - run.startedAt, run.cpuMs, run.callsMs))
    }
    if (raw[0] !== 'pending') {
      this.forget(run)
      return this.done(run, raw)
    }
    run.suspendedAt = performance.now()
    if (!this.suspended.has(run.key)) {
      this.suspended.set(run.key, run)
      run.realm.live++
    }
    return { type: 'suspended', calls: run.started, remainingMs: run.deadline - run.suspendedAt }
  }

  /** The run is over (whatever ended it): it no longer counts as suspended in its context, and a retired context it leaves empty goes. */
  private forget(run: LiveRun, dropEmpty = true): void {
    if (!this.suspended.delete(run.key)) return
    if (--run.realm.live === 0 && dropEmpty && run.realm !== this.realm) this.dropRetired(run.realm)
  }

  private done(run: LiveRun, raw: RealmResult): Slice {
    const runMs = performance.now() - run.startedAt
    const timing = { runMs, cpuMs: run.cpuMs, callsMs: run.callsMs }
    switch (raw[0]) {
      case 'ok':
        return ended(run, { code: null, message: '', body: raw[1], ...timing })
      case 'error':
        return ended(run, { code: isErrorCode(raw[1]) ? raw[1] : 'SCRIPT_ERROR', message: raw[2], body: raw[3], ...timing })
      default:
        return ended(run, failedRun('SCRIPT_ERROR', 'The script could not be run', runMs, run.cpuMs, run.callsMs))
    }
  }

  dispose(): void {
    if (!this.isolate.isDisposed) this.isolate.dispose()
  }
}

/** A rejection's reason as one bounded line: a copied value from the isolate, read as data only. */
function reasonOf(reason: unknown): string {
  let text: string
  if (reason instanceof Error) text = `${reason.name}: ${reason.message}`
  else if (typeof reason === 'string') text = reason
  else if (typeof reason === 'number' || typeof reason === 'boolean' || typeof reason === 'bigint' || reason === null || reason === undefined) text = String(reason)
  else text = Object.prototype.toString.call(reason)
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

import ivm from 'isolated-vm'
import { randomFillSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { isCirclesError, isErrorCode } from '../errors/index.js'
import { EffectRecorder, type EffectLimits } from '../live/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
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
  /** Bounds on what a run emits and reports to the context's watchers. */
  readonly effects: EffectLimits
}

export type EngineOptions = RealmLimits & { readonly memoryMb: number }

interface ActiveRun {
  readonly id: number
  readonly ctx: RunContext
  readonly canWrite: boolean
}

const TIMED_OUT = 'Script execution timed out.'
const BOOTSTRAP_SOURCE = `(${realmBootstrap.toString()})`
const SEED_POOL_BYTES = 4096
/** Time the microtasks an aborted run left queued get before they are dropped (see resetAfterAbort). */
const FLUSH_TIMEOUT_MS = 5
const FORBIDDEN = (fn: string): HostAnswer => [false, 'FORBIDDEN', `${fn}: the circle's policy does not let this caller write`]

/**
 * One isolate with one prepared context, reused by every run on this thread (see
 * realm-bootstrap.ts for why that is safe). A run that times out or exhausts memory gets a fresh
 * context (or isolate) before the next run, so nothing it left half-done can leak.
 */
export class Engine {
  private readonly options: EngineOptions
  private isolate!: ivm.Isolate
  private context!: ivm.Context
  private runRef!: ivm.Reference<RealmApi['run']>
  private settleRef!: ivm.Reference<RealmApi['settle']>
  private active: ActiveRun | undefined
  private nextRunId = 1
  /** CSPRNG bytes handed out 16 at a time as per-run `Math.random` seeds. */
  private readonly seeds = new Uint32Array(SEED_POOL_BYTES / 4)
  private seedAt = this.seeds.length
  /** Contexts and isolates built so far. */
  rebuilds = 0
  /**
   * Whether the last run tried to change its namespace (save_data / delete_data, even one that
   * failed): its outcome must reach the node before the next run starts.
   */
  changed = false
  /** The committed writes and emitted events of the run in progress, for the context's watchers. */
  private readonly recorder = new EffectRecorder()

  constructor(options: EngineOptions) {
    this.options = options
    this.buildIsolate()
  }

  private buildIsolate(): void {
    this.isolate = new ivm.Isolate({ memoryLimit: this.options.memoryMb })
    this.buildContext()
  }

  private buildContext(): void {
    this.rebuilds++
    this.context = this.isolate.createContextSync()
    const boot = this.context.evalSync(BOOTSTRAP_SOURCE, { reference: true }) as ivm.Reference<typeof realmBootstrap>
    const limits: RealmLimits = {
      maxOutputBytes: this.options.maxOutputBytes,
      maxLogBytes: this.options.maxLogBytes,
      maxLogLines: this.options.maxLogLines,
    }
    const args = [new ivm.Callback(this.hostCall), new ivm.ExternalCopy(limits).copyInto(), new ivm.ExternalCopy(REALM_RUN_PARAMS).copyInto()]
    const api = boot.applySync(undefined, args as never, {
      result: { reference: true },
    }) as unknown as ivm.Reference<RealmApi>
    this.runRef = api.getSync('run', { reference: true }) as unknown as typeof this.runRef
    this.settleRef = api.getSync('settle', { reference: true }) as unknown as typeof this.settleRef
    boot.release()
    api.release()
  }

  private resetAfterAbort(): void {
    if (this.isolate.isDisposed) return this.buildIsolate()
    // A run stopped in its synchronous part leaves the microtasks it queued in the isolate's
    // queue, not the context's: the next script evaluated — the new context's bootstrap, which
    // has no time limit — would run them first, and one endless microtask would hang this thread
    // for good. Drain them under a time limit here: a microtask checkpoint that is terminated
    // clears the queue.
    for (let attempt = 0; ; attempt++) {
      try {
        this.context.evalSync('0', { timeout: FLUSH_TIMEOUT_MS })
        break
      } catch {
        if (attempt === 0) continue
        // Still running out of time with the queue cleared: start from a new isolate.
        this.isolate.dispose()
        return this.buildIsolate()
      }
    }
    this.context.release()
    this.buildContext()
  }

  /** Called synchronously from inside the isolate by the storage functions of a run. */
  private readonly hostCall = (op: string, runId: number, a: unknown, b: unknown): HostAnswer => {
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
          this.committing(() => store.write(a, b))
          this.recorder.saved(a as string, b)
          return [true, null]
        case 'delete': {
          if (!run.canWrite) return FORBIDDEN('delete_data')
          this.changed = true
          const existed = this.committing(() => store.remove(a))
          if (existed) this.recorder.deleted(a as string)
          return [true, existed]
        }
        case 'emit':
          if (typeof b !== 'string') return [false, 'INVALID_DOCUMENT', 'emit: value is not JSON-serialisable']
          this.recorder.emit(a, b)
          return [true, null]
        case 'random': {
          const bytes = new Uint8Array(Math.max(0, Math.min(65536, Number(a) | 0)))
          randomFillSync(bytes)
          return [true, new ivm.ExternalCopy(bytes.buffer).copyInto()]
        }
        default:
          return [false, 'SCRIPT_ERROR', 'unknown storage operation']
      }
    } catch (error) {
      if (isCirclesError(error)) return [false, error.code, error.message]
      return [false, 'STORAGE_ERROR', 'storage failed']
    }
  }

  /**
   * A write or delete. Refusals before the disk is touched (quota, name) leave nothing to report;
   * any other failure may have happened after the change landed, so the run's watchers are told
   * to read again rather than be told nothing.
   */
  private committing<T>(write: () => T): T {
    try {
      return write()
    } catch (error) {
      if (!isCirclesError(error) || (error.code !== 'QUOTA_EXCEEDED' && error.code !== 'INVALID_NAME')) this.recorder.uncertain()
      throw error
    }
  }

  private seed(): number {
    if (this.seedAt >= this.seeds.length) {
      randomFillSync(this.seeds)
      this.seedAt = 0
    }
    return this.seeds[this.seedAt++]!
  }

  /** Run one script to completion (or to its limit), with its effects. Never throws. */
  run(request: RunRequest, ctx: RunContext): RunOutcome {
    this.recorder.start(ctx.effects)
    const outcome = this.execute(request, ctx)
    const effects = this.recorder.take()
    return effects === undefined ? outcome : { ...outcome, effects }
  }

  private execute(request: RunRequest, ctx: RunContext): RunOutcome {
    const id = this.nextRunId++
    this.active = { id, ctx, canWrite: request.canWrite }
    this.changed = false
    const cpuBefore = this.isolate.cpuTime
    const started = performance.now()
    const timeout = request.timeoutMs
    let raw: RealmResult
    try {
      raw = this.runRef.applySync(
        undefined,
        [id, request.script, request.caller, ctx.circle, ctx.dbPathLabel, this.seed(), this.seed(), this.seed(), this.seed()],
        { timeout, result: { copy: true } },
      ) as unknown as RealmResult
      if (raw[0] === 'pending') {
        raw = this.settleRef.applySync(undefined, [id], { timeout, result: { copy: true } }) as unknown as RealmResult
      }
    } catch (error) {
      const runMs = performance.now() - started
      const memory = this.isolate.isDisposed
      const cpuMs = memory ? runMs : Number(this.isolate.cpuTime - cpuBefore) / 1e6
      this.active = undefined
      this.resetAfterAbort()
      if (memory) return failedRun('SCRIPT_MEMORY', `The script ran past its memory limit (${this.options.memoryMb} MB)`, runMs, cpuMs)
      if ((error as Error).message === TIMED_OUT) {
        return failedRun('SCRIPT_TIMEOUT', `The script ran past its time limit (${timeout} ms)`, runMs, cpuMs)
      }
      return failedRun('SCRIPT_ERROR', 'The script could not be run', runMs, cpuMs)
    }
    this.active = undefined
    const runMs = performance.now() - started
    const cpuMs = Number(this.isolate.cpuTime - cpuBefore) / 1e6
    if (cpuMs > ctx.cpuMs) return failedRun('SCRIPT_TIMEOUT', `The script ran past its CPU time limit (${ctx.cpuMs} ms)`, runMs, cpuMs)
    switch (raw[0]) {
      case 'ok':
        return { code: null, message: '', body: raw[1], runMs, cpuMs }
      case 'error':
        return { code: isErrorCode(raw[1]) ? raw[1] : 'SCRIPT_ERROR', message: raw[2], body: raw[3], runMs, cpuMs }
      default:
        return failedRun('SCRIPT_ERROR', 'The script could not be run', runMs, cpuMs)
    }
  }

  dispose(): void {
    if (!this.isolate.isDisposed) this.isolate.dispose()
  }
}

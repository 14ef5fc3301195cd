import ivm from 'isolated-vm'
import { performance } from 'node:perf_hooks'
import { isCirclesError, isErrorCode, type ErrorCode } from '../errors/index.js'
import { NamespaceStore, type StorageQuota } from '../storage/index.js'
import { ISOLATE_BOOTSTRAP } from './isolate-bootstrap.js'
import { failedOutcome, type RunOutcome } from './messages.js'

/** What one run needs from its context, beyond the script. */
export interface RunContext {
  readonly circle: string
  readonly dbPath: string
  readonly store: NamespaceStore
  quota: StorageQuota
}

export interface RunSpec {
  readonly script: string
  readonly caller: string
  readonly canWrite: boolean
  readonly timeoutMs: number
  readonly cpuMs: number
}

export interface EngineOptions {
  readonly memoryMb: number
  readonly maxLogBytes: number
  readonly maxOutputBytes: number
}

type IsolateResult =
  | readonly ['O', string, string | null, string[], boolean]
  | readonly ['E', string, string, string[], boolean]
  | readonly ['P']

interface ActiveRun {
  readonly id: number
  readonly ctx: RunContext
  readonly canWrite: boolean
}

const TIMED_OUT = 'Script execution timed out.'

/**
 * One isolate with one prepared context, reused by every run on this thread (see
 * isolate-bootstrap.ts for why that is safe). A run that times out or exhausts memory gets a
 * fresh context (or isolate) before the next run, so nothing it left half-done can leak.
 */
export class Engine {
  private readonly options: EngineOptions
  private isolate!: ivm.Isolate
  private context!: ivm.Context
  private runRef!: ivm.Reference<(...args: unknown[]) => IsolateResult>
  private settleRef!: ivm.Reference<(runId: number) => IsolateResult>
  private active: ActiveRun | undefined
  private nextRunId = 1
  /** Contexts and isolates built so far (for tests and metrics). */
  rebuilds = 0

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
    const boot = this.context.evalSync(ISOLATE_BOOTSTRAP, { reference: true }) as ivm.Reference<
      (...args: unknown[]) => unknown
    >
    const api = boot.applySync(
      undefined,
      [new ivm.Callback(this.hostCall), this.options.maxLogBytes, this.options.maxOutputBytes],
      { result: { reference: true } },
    ) as unknown as ivm.Reference<Record<string, unknown>>
    this.runRef = api.getSync('run', { reference: true }) as unknown as typeof this.runRef
    this.settleRef = api.getSync('settle', { reference: true }) as unknown as typeof this.settleRef
    boot.release()
    api.release()
  }

  private resetAfterAbort(): void {
    if (this.isolate.isDisposed) this.buildIsolate()
    else {
      this.context.release()
      this.buildContext()
    }
  }

  /** Called synchronously from inside the isolate by the storage functions of a run. */
  private readonly hostCall = (op: string, runId: number, a: unknown, b: unknown): string => {
    const run = this.active
    if (run === undefined || run.id !== runId) {
      return '1SCRIPT_ERROR\u0000storage functions of a finished run cannot be called'
    }
    const { ctx } = run
    try {
      switch (op) {
        case 'load':
          return `0${ctx.store.read(a, ctx.quota) ?? ''}`
        case 'list':
          return `0${JSON.stringify(ctx.store.list(a))}`
        case 'save':
          if (!run.canWrite) return "1FORBIDDEN\u0000save_data: the circle's policy does not let this caller write"
          if (typeof b !== 'string') return '1INVALID_DOCUMENT\u0000save_data: value is not JSON-serialisable'
          ctx.store.write(a, b, ctx.quota)
          return '0'
        case 'delete':
          if (!run.canWrite) return "1FORBIDDEN\u0000delete_data: the circle's policy does not let this caller write"
          return ctx.store.remove(a, ctx.quota) ? '0true' : '0false'
        default:
          return `1SCRIPT_ERROR\u0000unknown storage operation`
      }
    } catch (error) {
      if (isCirclesError(error)) return `1${error.code}\u0000${error.message}`
      return '1STORAGE_ERROR\u0000storage failed'
    }
  }

  /** Run one script to completion (or to its limit). Never throws. */
  run(spec: RunSpec, ctx: RunContext): RunOutcome {
    const id = this.nextRunId++
    this.active = { id, ctx, canWrite: spec.canWrite }
    const cpuBefore = this.isolate.cpuTime
    const started = performance.now()
    let raw: IsolateResult
    try {
      raw = this.runRef.applySync(undefined, [id, spec.script, spec.caller, ctx.circle, ctx.dbPath], {
        timeout: spec.timeoutMs,
        result: { copy: true },
      }) as unknown as IsolateResult
      if (raw[0] === 'P') {
        raw = this.settleRef.applySync(undefined, [id], { timeout: spec.timeoutMs, result: { copy: true } }) as unknown as IsolateResult
      }
    } catch (error) {
      const runMs = performance.now() - started
      const memory = this.isolate.isDisposed
      const cpuMs = memory ? runMs : Number(this.isolate.cpuTime - cpuBefore) / 1e6
      this.active = undefined
      this.resetAfterAbort()
      if (memory) {
        return failedOutcome('SCRIPT_MEMORY', `The script ran past its memory limit (${this.options.memoryMb} MB)`, runMs, cpuMs)
      }
      if ((error as Error).message === TIMED_OUT) {
        return failedOutcome('SCRIPT_TIMEOUT', `The script ran past its time limit (${spec.timeoutMs} ms)`, runMs, cpuMs)
      }
      return failedOutcome('SCRIPT_ERROR', 'The script could not be run', runMs, cpuMs)
    }
    this.active = undefined
    const runMs = performance.now() - started
    const cpuMs = Number(this.isolate.cpuTime - cpuBefore) / 1e6
    if (cpuMs > spec.cpuMs) {
      return failedOutcome('SCRIPT_TIMEOUT', `The script ran past its CPU time limit (${spec.cpuMs} ms)`, runMs, cpuMs)
    }
    if (raw[0] === 'O') {
      return { type: 'ok', json: raw[1], output: raw[2] ?? raw[1], logs: raw[3], logsTruncated: raw[4], runMs, cpuMs }
    }
    if (raw[0] === 'E') {
      const code: ErrorCode = isErrorCode(raw[1]) ? raw[1] : 'SCRIPT_ERROR'
      return { type: 'error', code, message: raw[2], logs: raw[3], logsTruncated: raw[4], runMs, cpuMs }
    }
    return failedOutcome('SCRIPT_ERROR', 'The script could not be run', runMs, cpuMs)
  }

  dispose(): void {
    if (!this.isolate.isDisposed) this.isolate.dispose()
  }
}

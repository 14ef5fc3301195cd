import { Piscina } from 'piscina'
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { circlesError } from '../errors/index.js'
import type { ContextBatch, ContextBatchResult, RunOutcome, WorkerReply, WorkerTask } from './messages.js'
import { workerUrl } from '../threads/index.js'

export interface SandboxPoolOptions {
  /** Worker threads running scripts; default: the machine's available parallelism. */
  readonly threads?: number
}

interface Pending {
  readonly batch: ContextBatch
  readonly resolve: (result: ContextBatchResult) => void
}

function crashed(batch: ContextBatch, message: string): ContextBatchResult {
  const outcome: RunOutcome = {
    type: 'error',
    code: 'WORKER_CRASHED',
    message,
    logs: [],
    logsTruncated: false,
    runMs: 0,
    cpuMs: 0,
  }
  return { outcomes: batch.runs.map(() => outcome), usedBytes: -1 }
}

/**
 * A piscina pool of sandbox worker threads.
 *
 * Batches submitted in the same event-loop turn are coalesced into as few thread hand-offs as
 * there are threads (a hand-off costs tens of microseconds; a warm run a few). A worker that
 * dies is replaced by piscina; every run of the task it held is answered WORKER_CRASHED.
 *
 * @example
 * const pool = new SandboxPool({ threads: 2 })
 * const { outcomes } = await pool.run(batch)
 */
export class SandboxPool {
  private readonly piscina: Piscina<WorkerTask, WorkerReply>
  private readonly threadCount: number
  private pending: Pending[] = []
  private scheduled = false
  private inFlight = 0
  private closed = false
  /** Thread hand-offs so far, and the batches they carried (for metrics). */
  readonly counters = { tasks: 0, batches: 0, runs: 0, crashes: 0 }

  constructor(options: SandboxPoolOptions = {}) {
    const threads = options.threads ?? availableParallelism()
    if (!Number.isInteger(threads) || threads < 1) {
      throw circlesError('INVALID_OPTION', 'options.threads must be a positive integer')
    }
    this.threadCount = threads
    this.piscina = new Piscina<WorkerTask, WorkerReply>({
      filename: workerUrl(import.meta.url, 'worker'),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      recordTiming: false,
    })
    // A worker that exits is replaced by piscina; its task is rejected and answered below.
    this.piscina.on('error', () => {
      this.counters.crashes++
    })
  }

  /** Worker threads currently in the pool (for operators and for tests that kill one). */
  get threads(): readonly Worker[] {
    return this.piscina.threads
  }

  /** Batches submitted and not yet answered. */
  get queued(): number {
    return this.pending.length + this.inFlight
  }

  /** Run a context's batch; resolves with one outcome per run, in order. Never rejects. */
  run(batch: ContextBatch): Promise<ContextBatchResult> {
    if (this.closed) return Promise.resolve(crashed(batch, 'The sandbox pool is closed'))
    return new Promise((resolve) => {
      this.pending.push({ batch, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(this.flush)
      }
    })
  }

  private readonly flush = (): void => {
    this.scheduled = false
    const pending = this.pending
    this.pending = []
    const chunks = Math.min(this.threadCount, pending.length)
    for (let c = 0; c < chunks; c++) {
      const group = pending.filter((_, i) => i % chunks === c)
      this.dispatch(group)
    }
  }

  private dispatch(group: Pending[]): void {
    const batches = group.map((p) => p.batch)
    this.inFlight += group.length
    this.counters.tasks++
    this.counters.batches += group.length
    for (const b of batches) this.counters.runs += b.runs.length
    this.piscina.run({ type: 'run', batches }).then(
      (reply) => {
        this.inFlight -= group.length
        group.forEach((p, i) => p.resolve(reply.results[i] ?? crashed(p.batch, 'The worker returned no result')))
      },
      (error: unknown) => {
        this.inFlight -= group.length
        const message = `The worker running this task stopped: ${(error as Error).message}`
        for (const p of group) p.resolve(crashed(p.batch, message))
      },
    )
  }

  /** Stop taking work, let running tasks finish, then stop the threads. */
  async close(): Promise<void> {
    this.closed = true
    for (const p of this.pending.splice(0)) p.resolve(crashed(p.batch, 'The sandbox pool is closed'))
    await this.piscina.close()
  }
}

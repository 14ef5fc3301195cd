import { createActor, type Actor } from 'xstate'
import { randomUUID } from 'node:crypto'
import { circlesError, type CirclesError } from '../../errors/index.js'
import type { PublicKeyHex } from '../../identity/index.js'
import { canRun, canWrite, type Policy } from '../../policy/index.js'
import type { ContextBatch, RunLimits, RunOutcome, SandboxPool } from '../../sandbox/index.js'
import type { StorageQuota } from '../../storage/index.js'
import { peerMachine, type PeerMachine } from './machine.js'

/** Everything a peer context needs to run. */
export interface PeerSettings {
  readonly pubkey: PublicKeyHex
  readonly dbPath: string
  readonly root: string
  readonly policy: Policy
  readonly limits: RunLimits
  readonly quota: StorageQuota
  readonly mailboxCapacity: number
  readonly maxBatchRuns: number
  /** Batches of this context handed to the sandbox and not answered yet, at most. */
  readonly maxBatchesInFlight: number
  readonly passivateAfterMs: number
}

export interface PlayRequest {
  /** Canonical key of the caller; '' for an anonymous caller. */
  readonly caller: PublicKeyHex | ''
  readonly script: string
  /** Lowers the context's wall-clock limit for this run. */
  readonly timeoutMs?: number
}

/** A completed run. `json` is the completion value as JSON text (ready to splice into a response). */
export interface PlayOutcome {
  readonly taskId: string
  readonly output: string
  readonly json: string
  readonly logs: readonly string[]
  readonly logsTruncated: boolean
  readonly queuedMs: number
  readonly runMs: number
  readonly cpuMs: number
}

/** A task's lifecycle: pending (in the mailbox) → processing (in a batch) → completed | error. */
export type TaskStatus = 'pending' | 'processing' | 'completed' | 'error'

interface Task {
  readonly taskId: string
  readonly script: string
  readonly caller: PublicKeyHex | ''
  readonly canWrite: boolean
  readonly timeoutMs: number
  readonly enqueuedAt: number
  status: TaskStatus
  startedAt: number
  readonly resolve: (outcome: PlayOutcome) => void
  readonly reject: (error: CirclesError) => void
}

export type PeerTermination = 'passivated' | 'stopped' | 'crashed'

export interface PeerHooks {
  /** The actor ended; the host drops it (a later message builds a new one). */
  readonly onTerminated: (reason: PeerTermination) => void
}

function settle(task: Task, outcome: RunOutcome, now: number): void {
  if (task.status === 'completed' || task.status === 'error') return
  if (outcome.type === 'ok') {
    task.status = 'completed'
    task.resolve({
      taskId: task.taskId,
      output: outcome.output,
      json: outcome.json,
      logs: outcome.logs,
      logsTruncated: outcome.logsTruncated,
      queuedMs: task.startedAt - task.enqueuedAt,
      runMs: outcome.runMs,
      cpuMs: outcome.cpuMs,
    })
  } else {
    task.status = 'error'
    task.reject(
      circlesError(outcome.code, outcome.message, {
        task_id: task.taskId,
        logs: outcome.logs,
        ...(outcome.logsTruncated ? { logs_truncated: true } : {}),
        timings: { queued_ms: task.startedAt - task.enqueuedAt, run_ms: outcome.runMs, cpu_ms: outcome.cpuMs, total_ms: now - task.enqueuedAt },
      }),
    )
  }
}

function fail(task: Task, error: CirclesError): void {
  if (task.status === 'completed' || task.status === 'error') return
  task.status = 'error'
  task.reject(error)
}

/**
 * A peer context: an ordered, bounded mailbox of script runs drained in batches into the
 * sandbox, under the lifecycle of {@link peerMachine}. Its batches go to the one sandbox thread
 * the context is pinned to, which runs them in order: one peer never runs two scripts at once,
 * so its documents see its runs in mailbox order, while different peers run in parallel.
 */
export class PeerActor {
  readonly settings: PeerSettings
  private readonly pool: SandboxPool
  private readonly hooks: PeerHooks
  private readonly actor: Actor<PeerMachine>
  private queue: Task[] = []
  private head = 0
  /** Tasks handed to the sandbox and not answered yet. */
  private readonly inFlight = new Set<Task>()
  private batchesInFlight = 0
  /** Wakes the drain loop (once per event-loop turn, so that a turn's arrivals share a batch). */
  private wake: (() => void) | undefined
  private wakeScheduled = false
  /** stop() was called: dispatch nothing more. */
  private stopping = false
  private ended = false
  private readonly done: Promise<void>
  private markDone: () => void = () => {}

  constructor(settings: PeerSettings, pool: SandboxPool, hooks: PeerHooks) {
    this.settings = settings
    this.pool = pool
    this.hooks = hooks
    this.actor = createActor(peerMachine, {
      input: { passivateAfterMs: settings.passivateAfterMs, drain: () => this.drainMailbox() },
    })
    this.done = new Promise<void>((resolve) => {
      this.markDone = resolve
    })
    this.actor.subscribe({
      next: (snapshot) => {
        // A task that arrived between the drain's end and the machine settling in idle sent its
        // WORK to `processing`, where it is ignored: pick it up here.
        if (snapshot.value === 'idle' && this.pending > 0) {
          this.actor.send({ type: 'WORK' })
          return
        }
        if (snapshot.status !== 'done') return
        const reason = snapshot.value === 'passivated' ? 'passivated' : 'stopped'
        this.end(reason, circlesError('SHUTTING_DOWN', 'The peer context stopped before running this task'))
      },
      error: () => this.end('crashed', circlesError('WORKER_CRASHED', 'The peer context running this task crashed')),
    })
    this.actor.start()
  }

  /** Tasks waiting in the mailbox. */
  get pending(): number {
    return this.queue.length - this.head
  }

  /** Tasks waiting or running. */
  get load(): number {
    return this.pending + this.inFlight.size
  }

  /** The machine state, for tests and metrics. */
  get state(): string {
    return String(this.actor.getSnapshot().value)
  }

  /**
   * Queue a script run. Rejects with AUTH_REQUIRED / FORBIDDEN when the policy refuses the
   * caller, OVERLOADED when the mailbox is full, SHUTTING_DOWN when the context is stopping.
   */
  play(request: PlayRequest): Promise<PlayOutcome> {
    const { policy, pubkey, limits } = this.settings
    if (!canRun(policy, request.caller, pubkey)) {
      return Promise.reject(
        request.caller === ''
          ? circlesError('AUTH_REQUIRED', 'This circle does not admit anonymous callers: authenticate first')
          : circlesError('FORBIDDEN', "The circle's policy does not let this caller run scripts"),
      )
    }
    if (this.ended || this.stopping) return Promise.reject(circlesError('SHUTTING_DOWN', 'The peer context is stopping'))
    if (this.load >= this.settings.mailboxCapacity) {
      return Promise.reject(
        circlesError('OVERLOADED', `The mailbox of this context is full (${this.settings.mailboxCapacity} tasks)`, {
          limit: this.settings.mailboxCapacity,
        }),
      )
    }
    return new Promise<PlayOutcome>((resolve, reject) => {
      const now = performance.now()
      this.queue.push({
        taskId: randomUUID(),
        script: request.script,
        caller: request.caller,
        canWrite: canWrite(policy, request.caller, pubkey),
        timeoutMs: request.timeoutMs === undefined ? limits.timeoutMs : Math.min(limits.timeoutMs, request.timeoutMs),
        enqueuedAt: now,
        status: 'pending',
        startedAt: now,
        resolve,
        reject,
      })
      if (this.pending === 1) this.actor.send({ type: 'WORK' })
      this.scheduleWake()
    })
  }

  private scheduleWake(): void {
    if (this.wakeScheduled || this.wake === undefined) return
    this.wakeScheduled = true
    setImmediate(() => {
      this.wakeScheduled = false
      const wake = this.wake
      this.wake = undefined
      wake?.()
    })
  }

  /**
   * Hand the mailbox to the sandbox in ordered batches — up to `maxBatchesInFlight` at once, which
   * the sandbox runs in order on the one thread this context is pinned to — until the mailbox is
   * empty and every batch has answered. A STOP lets the running batches finish and dispatches no more.
   */
  private async drainMailbox(): Promise<void> {
    const { maxBatchesInFlight } = this.settings
    for (;;) {
      const stopping = this.stopping || this.ended
      while (!stopping && this.pending > 0 && this.batchesInFlight < maxBatchesInFlight) this.dispatchBatch()
      if (this.batchesInFlight === 0 && (this.pending === 0 || stopping)) return
      await new Promise<void>((resolve) => {
        this.wake = resolve
      })
    }
  }

  private dispatchBatch(): void {
    const count = Math.min(this.pending, this.settings.maxBatchRuns)
    const tasks = this.queue.slice(this.head, this.head + count)
    this.head += count
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    const now = performance.now()
    for (const task of tasks) {
      task.status = 'processing'
      task.startedAt = now
      this.inFlight.add(task)
    }
    this.batchesInFlight++
    const { settings } = this
    const batch: ContextBatch = {
      circle: settings.pubkey,
      dbPath: settings.dbPath,
      root: settings.root,
      quota: settings.quota,
      limits: settings.limits,
      runs: tasks.map((t) => ({ taskId: t.taskId, script: t.script, caller: t.caller, canWrite: t.canWrite, timeoutMs: t.timeoutMs })),
    }
    void this.pool.run(batch).then((result) => {
      const finished = performance.now()
      tasks.forEach((task, i) => {
        const outcome = result.outcomes[i]
        if (outcome === undefined) fail(task, circlesError('INTERNAL_ERROR'))
        else settle(task, outcome, finished)
        this.inFlight.delete(task)
      })
      this.batchesInFlight--
      const wake = this.wake
      this.wake = undefined
      wake?.()
    })
  }

  /** Finish the running batches, answer queued tasks SHUTTING_DOWN, and stop. */
  async stop(): Promise<void> {
    this.stopping = true
    this.actor.send({ type: 'STOP' })
    await this.done
  }

  /** Stop at once: every task held (queued or running) is answered with an error. */
  kill(): void {
    if (this.ended) return
    this.end('crashed', circlesError('WORKER_CRASHED', 'The peer context running this task was killed'))
    this.actor.stop()
  }

  private end(reason: PeerTermination, error: CirclesError): void {
    if (this.ended) return
    this.ended = true
    for (const task of this.inFlight) fail(task, error)
    for (let i = this.head; i < this.queue.length; i++) fail(this.queue[i]!, error)
    this.queue = []
    this.head = 0
    this.inFlight.clear()
    const wake = this.wake
    this.wake = undefined
    wake?.()
    this.hooks.onTerminated(reason)
    this.markDone()
  }
}

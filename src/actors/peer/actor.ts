import { createActor, type Actor } from 'xstate'
import { randomUUID } from 'node:crypto'
import type { CallRouter } from '../../calls/index.js'
import { circlesError, type CirclesError } from '../../errors/index.js'
import type { PublicKeyHex } from '../../identity/index.js'
import { canCall, canRun, canWrite, runRefusal, type Policy } from '../../policy/index.js'
import { failedRun, type RunOutcome, type RunReceipt } from '../../protocol/index.js'
import type { CallPort, RunLimits, RunOptions, RunRequest, SandboxContextRef, SandboxPool } from '../../sandbox/index.js'
import type { StorageQuota } from '../../storage/index.js'
import { ExitListeners, type ChildHandle, type ExitReason } from '../../supervisor/index.js'
import { peerMachine, type PeerMachine } from './machine.js'

/** Everything a peer context needs to run. */
export interface PeerSettings {
  readonly pubkey: PublicKeyHex
  /** `DB_PATH/<pubkey>`. */
  readonly root: string
  readonly policy: Policy
  readonly limits: RunLimits
  readonly quota: StorageQuota
  readonly mailboxCapacity: number
  /** Runs of this context handed to the sandbox and not answered yet, at most. */
  readonly maxRunsInFlight: number
  readonly passivateAfterMs: number
}

export interface PlayRequest {
  /** Canonical key of the caller; '' for an anonymous caller. */
  readonly caller: PublicKeyHex | ''
  readonly script: string
  /** Lowers the context's wall-clock limit for this run. */
  readonly timeoutMs?: number
  /** Who sent it (the remote address), for crash quarantine; absent for local callers. */
  readonly origin?: string
  /** The task's id when it has one already (a task queued by another node); a new one otherwise. */
  readonly taskId?: string
  // A run a call started (see src/calls): where its workflow came from.
  /** CALL_CHAIN: the originating client, then each calling context (the caller last). Absent: `[caller]`. */
  readonly chain?: readonly string[]
  /** The workflow's id (its first run's task id). */
  readonly chainId?: string
  /** When the calling run's time is up (ms since the epoch): the run gets no longer. */
  readonly deadline?: number
  /**
   * Aborted when nobody will take the answer any more — the node cut the connection that sent
   * it (answered CONNECTION_CLOSED), or the calling run ended (CALL_CANCELLED): a run still in
   * the mailbox then never starts.
   */
  readonly signal?: AbortSignal
}

/** What the peer host hears from a peer actor. */
export interface PeerHooks {
  /**
   * A run's outcome that carries effects (committed writes, emitted events) or that its host's
   * death cut short (WORKER_CRASHED: what it wrote is unknown), before its caller gets it, in
   * the order the runs ran.
   */
  readonly onOutcome?: (outcome: RunOutcome, caller: PublicKeyHex | '') => void
  /** Whether subscribers watch the context: a watched context is not passivated. */
  readonly watched?: () => boolean
}

/** A run that reached the sandbox: its outcome, task id and time in the mailbox. */
export interface PlayOutcome extends RunReceipt {
  readonly outcome: RunOutcome
}

/** A task's lifecycle: pending (in the mailbox) → processing (in the sandbox) → completed | error. */
export type TaskStatus = 'pending' | 'processing' | 'completed' | 'error'

interface Task {
  readonly taskId: string
  readonly request: PlayRequest
  readonly canWrite: boolean
  readonly canCall: boolean
  readonly timeoutMs: number
  readonly enqueuedAt: number
  status: TaskStatus
  readonly resolve: (outcome: PlayOutcome) => void
  readonly reject: (error: CirclesError) => void
}

export type PeerTermination = 'passivated' | 'stopped' | 'crashed'

/** How long a drain waits on an empty mailbox before it ends (see pump). */
const DRAIN_LINGER_MS = 20

const stoppedBeforeRunning = (): CirclesError => circlesError('SHUTTING_DOWN', 'The peer context stopped before running this task')

function fail(task: Task, error: CirclesError): void {
  if (task.status === 'completed' || task.status === 'error') return
  task.status = 'error'
  task.reject(error)
}

/**
 * A peer context: an ordered, bounded mailbox of script runs handed to the sandbox, under the
 * lifecycle of {@link peerMachine}. Its runs go to the one sandbox host the context is pinned to,
 * which runs them in order, one at a time: runs start in mailbox order, and different peers run
 * in parallel. A run that awaits a call is suspended and holds no place in the window of runs in
 * flight: the context runs its other tasks meanwhile (they interleave at its `await`s).
 *
 * The actor is a child of the node's peers supervisor ({@link ChildHandle}): it reports its own
 * end — passivated or stopped (normal), killed or crashed (error).
 */
export class PeerActor implements ChildHandle {
  readonly settings: PeerSettings
  private readonly pool: SandboxPool
  private readonly context: SandboxContextRef
  private readonly hooks: PeerHooks
  private readonly actor: Actor<PeerMachine>
  private readonly router: CallRouter | undefined
  private queue: Task[] = []
  private head = 0
  private inFlight = 0
  /** Runs in flight that are suspended, waiting on calls (they do not count against the window). */
  private waitingRuns = 0
  /** Resolves the running drain once the mailbox is empty and every run has answered. */
  private drained: (() => void) | undefined
  private lingerTimer: NodeJS.Timeout | undefined
  /** When a run was last started or answered: the drain lingers from there. */
  private lastActiveAt = 0
  /** stop() was called: start nothing more. */
  private stopping = false
  private ended = false
  private readonly exits = new ExitListeners()
  private readonly done: Promise<void>
  private markDone: () => void = () => {}

  constructor(settings: PeerSettings, pool: SandboxPool, context: SandboxContextRef, router?: CallRouter, hooks: PeerHooks = {}) {
    this.settings = settings
    this.pool = pool
    this.context = context
    this.router = router
    this.hooks = hooks
    this.actor = createActor(peerMachine, {
      input: { passivateAfterMs: settings.passivateAfterMs, drain: () => this.drainMailbox(), ...(hooks.watched === undefined ? {} : { watched: hooks.watched }) },
    })
    this.done = new Promise<void>((resolve) => {
      this.markDone = resolve
    })
    this.actor.subscribe({
      next: (snapshot) => {
        // A task that arrived between the drain's end and the machine settling in idle sent its
        // WORK to `processing`, where it is ignored: pick it up here.
        if (snapshot.value === 'idle' && this.queued > 0) {
          this.actor.send({ type: 'WORK' })
          return
        }
        if (snapshot.status !== 'done') return
        const reason = snapshot.value === 'passivated' ? 'passivated' : 'stopped'
        this.end(reason, stoppedBeforeRunning())
      },
      error: () => this.end('crashed', circlesError('WORKER_CRASHED', 'The peer context running this task crashed')),
    })
    this.actor.start()
  }

  /** Tasks waiting in the mailbox. */
  get queued(): number {
    return this.queue.length - this.head
  }

  /** Tasks waiting or running. */
  get load(): number {
    return this.queued + this.inFlight
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
    if (!canRun(policy, request.caller, pubkey)) return Promise.reject(runRefusal(request.caller))
    if (this.ended || this.stopping) return Promise.reject(circlesError('SHUTTING_DOWN', 'The peer context is stopping'))
    if (this.load >= this.settings.mailboxCapacity) {
      return Promise.reject(
        circlesError('OVERLOADED', `The mailbox of this context is full (${this.settings.mailboxCapacity} tasks)`, {
          limit: this.settings.mailboxCapacity,
        }),
      )
    }
    return new Promise<PlayOutcome>((resolve, reject) => {
      this.queue.push({
        taskId: request.taskId ?? randomUUID(),
        request,
        canWrite: canWrite(policy, request.caller, pubkey),
        canCall: this.router !== undefined && canCall(policy, request.caller, pubkey),
        timeoutMs: request.timeoutMs === undefined ? limits.timeoutMs : Math.min(limits.timeoutMs, request.timeoutMs),
        enqueuedAt: performance.now(),
        status: 'pending',
        resolve,
        reject,
      })
      if (this.drained !== undefined) this.pump()
      else if (this.queued === 1) this.actor.send({ type: 'WORK' })
    })
  }

  /**
   * Hand the mailbox to the sandbox — up to `maxRunsInFlight` runs at once, not counting runs
   * suspended on calls, which the sandbox runs in order on the one thread this context is pinned
   * to — until the mailbox is empty and every run has answered. A STOP lets the running runs
   * finish and dispatches no more.
   */
  private drainMailbox(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drained = resolve
      this.pump()
    })
  }

  private pump(): void {
    const max = this.settings.maxRunsInFlight
    while (!this.stopping && !this.ended && this.queued > 0 && this.inFlight - this.waitingRuns < max) {
      const task = this.queue[this.head]!
      // The slot lets go of the task: its settled promise holds the run's outcome (up to the
      // output limit), and the slots before `head` live until the next compaction.
      this.queue[this.head++] = undefined as unknown as Task
      this.startRun(task)
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    if (this.inFlight !== 0) return
    if (this.stopping || this.ended) this.endDrain()
    else if (this.queued === 0 && this.lingerTimer === undefined && this.drained !== undefined) {
      // A busy context empties its mailbox between every round trip of its callers: ending the
      // drain each time would cost a machine transition per request. It ends once the mailbox
      // has stayed empty for a moment.
      this.lingerTimer = setTimeout(this.lingered, DRAIN_LINGER_MS)
    }
  }

  private readonly lingered = (): void => {
    this.lingerTimer = undefined
    if (this.inFlight !== 0 || this.queued !== 0 || this.drained === undefined) return
    // Busy since the timer was set (a context whose callers wait on each answer is empty most
    // of the time, between runs): wait out the rest of the linger from its last activity, or
    // a context with steady traffic would end and restart its drain every 20 ms.
    const idleMs = performance.now() - this.lastActiveAt
    if (idleMs < DRAIN_LINGER_MS) this.lingerTimer = setTimeout(this.lingered, DRAIN_LINGER_MS - idleMs)
    else this.endDrain()
  }

  private endDrain(): void {
    clearTimeout(this.lingerTimer)
    this.lingerTimer = undefined
    const drained = this.drained
    this.drained = undefined
    drained?.()
  }

  private startRun(task: Task): void {
    const started = performance.now()
    if (task.request.signal?.aborted === true) {
      // Its sender was cut, or its calling run ended: the sandbox's time goes to those still listening.
      task.status = 'error'
      const outcome =
        task.request.chain === undefined ? failedRun('CONNECTION_CLOSED', 'The connection that sent this task was cut before it ran') : failedRun('CALL_CANCELLED')
      task.resolve({ outcome, taskId: task.taskId, queuedMs: started - task.enqueuedAt })
      return
    }
    task.status = 'processing'
    this.inFlight++
    this.lastActiveAt = started
    const answer = (outcome: RunOutcome) => {
      this.inFlight--
      this.lastActiveAt = performance.now()
      if (outcome.effects !== undefined || outcome.code === 'WORKER_CRASHED') this.hooks.onOutcome?.(outcome, task.request.caller)
      if (task.status === 'processing') {
        task.status = outcome.code === null ? 'completed' : 'error'
        task.resolve({ outcome, taskId: task.taskId, queuedMs: started - task.enqueuedAt })
      }
      this.pump()
    }
    const { request } = task
    let { timeoutMs } = task
    if (request.deadline !== undefined) {
      // A callee's time is the smaller of its own and its caller's, mailbox wait included.
      timeoutMs = Math.min(timeoutMs, Math.floor(request.deadline - Date.now()))
      if (request.signal?.aborted === true) return void Promise.resolve(failedRun('CALL_CANCELLED')).then(answer)
      if (timeoutMs < 1) return void Promise.resolve(failedRun('SCRIPT_TIMEOUT', `The calling run's time was up before this call ran`)).then(answer)
    }
    const { script, caller, chain } = request
    const run: RunRequest =
      chain === undefined
        ? { script, caller, canWrite: task.canWrite, canCall: task.canCall, timeoutMs }
        : { script, caller, canWrite: task.canWrite, canCall: task.canCall, timeoutMs, chain }
    let options: RunOptions | undefined
    // A call's signal follows it into the sandbox pool (a call not yet handed to its host is not
    // run); a client's play that left the mailbox runs, whatever became of its connection.
    const callSignal = request.chain === undefined ? undefined : request.signal
    if (task.canCall || callSignal !== undefined) {
      options = {
        ...(task.canCall ? { calls: this.callPort(task) } : {}),
        ...(callSignal === undefined ? {} : { signal: callSignal }),
        ...(request.chain === undefined ? {} : { caller: request.caller }),
      }
    }
    void this.pool.run(this.context, run, request.origin, options).then(answer)
  }

  /** The node's side of the calls of `task`'s run: each goes to the router as this context. */
  private callPort(task: Task): CallPort {
    const router = this.router!
    const { request } = task
    const chainId = request.chainId ?? task.taskId
    let holding = false
    return {
      call: (call, signal) => {
        if (!holding) {
          holding = true
          router.hold(chainId)
        }
        return router.route(
          {
            target: call.peer,
            script: call.script,
            caller: this.settings.pubkey,
            chain: [...(request.chain ?? [request.caller]), this.settings.pubkey],
            chainId,
            deadline: Date.now() + call.remainingMs,
            ...(request.origin === undefined ? {} : { origin: request.origin }),
            ...(call.timeoutMs > 0 ? { timeoutMs: call.timeoutMs } : {}),
          },
          signal,
        )
      },
      waiting: (waiting) => {
        this.waitingRuns += waiting ? 1 : -1
        if (waiting) this.pump()
      },
      ended: () => {
        if (holding) router.release(chainId)
      },
    }
  }

  /** Finish the running runs, answer queued tasks SHUTTING_DOWN, and stop. */
  async stop(): Promise<void> {
    this.stopping = true
    // Answered now, not once the running runs are done: a run of another stopping context may
    // be waiting on one of these calls, and on it the runs here may be waiting in turn.
    const error = stoppedBeforeRunning()
    for (let i = this.head; i < this.queue.length; i++) fail(this.queue[i]!, error)
    this.queue = []
    this.head = 0
    if (this.inFlight === 0) this.endDrain()
    this.actor.send({ type: 'STOP' })
    await this.done
  }

  /** Stop at once: every task held (queued or running) is answered with an error. */
  kill(): void {
    if (this.ended) return
    this.end('crashed', circlesError('WORKER_CRASHED', 'The peer context running this task was killed'))
    this.actor.stop()
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  private end(reason: PeerTermination, error: CirclesError): void {
    if (this.ended) return
    this.ended = true
    for (let i = this.head; i < this.queue.length; i++) fail(this.queue[i]!, error)
    // Runs already in the sandbox are answered by it when they finish (or by their host's death).
    this.queue = []
    this.head = 0
    this.endDrain()
    const exit: ExitReason = reason === 'crashed' ? { type: 'error', error: new Error(`peer ${this.settings.pubkey} ${error.message}`) } : { type: 'normal' }
    this.exits.exit(exit)
    this.markDone()
  }
}

import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { positiveIntegerOption } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
import { ExitListeners, Supervisor, type ChildHandle, type ChildSpec, type ExitReason, type SupervisorEvent, type SupervisorTree } from '../supervisor/index.js'
import { openHost, type HostExit, type HostLink, type SandboxIsolation } from './host-link.js'
import type { RunRequest, SandboxContext } from './run.js'
import { FLAG_DETACHED, FLAG_REBUILT, FRAME_SOFT_BYTES, FrameWriter, type Continuation, type HostReply } from './wire.js'

/** What the pool reports about a run it could not complete, and asks before sending one again. */
export interface RunSource {
  readonly circle: string
  /** Who sent it (a client's origin), when known: crash quarantine is by origin in the circle. */
  readonly origin: string | undefined
  /** The caller's key ('' when anonymous), for the log. */
  readonly caller: string
  /** For a run a call started: the calling context, which answers for the script it sent. */
  readonly callingContext?: string | undefined
}

/** A call a run started, as the node routes it. */
export interface CallSpec {
  readonly peer: string
  readonly script: string
  /** `options.timeout_ms` of the call; 0 when not given. */
  readonly timeoutMs: number
  /** The calling run's time left when it made the call. */
  readonly remainingMs: number
}

/** The node's side of the calls of one run (given to {@link SandboxPool.run} for a run that may call). */
export interface CallPort {
  /**
   * Route a call; resolves with the callee's outcome, or the error that refused it (never
   * rejects). `signal` aborts when the calling run ends first: a call that has not started is
   * then not run, and whatever it resolves with is dropped.
   */
  call(call: CallSpec, signal: AbortSignal): Promise<RunOutcome>
  /** The run waits on calls (true: it holds no thread) or can run again (false). */
  waiting(waiting: boolean): void
  /** The run has its outcome. */
  ended(): void
}

export interface RunOptions {
  /** The node's side of the run's calls (a run whose context lets it call out). */
  readonly calls?: CallPort
  /** Aborted: nobody waits for the run any more. If it has not been handed to its host it is not. */
  readonly signal?: AbortSignal
  /** For a run a call started: the calling context (see {@link RunSource}). */
  readonly caller?: string
}

export interface SandboxHooks {
  /** A run was executing when its host died: the likely cause (crash quarantine). */
  readonly onCrash?: (run: RunSource) => void
  /**
   * Asked for each run that had not started when its host died, before it is sent to the host
   * that replaces it; an outcome answers the run instead (e.g. RATE_LIMITED for a quarantined
   * circle, so that its other bombs are not run one after the other).
   */
  readonly refuse?: (run: RunSource) => RunOutcome | undefined
  /** A host process exited (expected or not), with the tail of its stderr. */
  readonly onHostExit?: (host: number, exit: HostExit, blame: 'none' | 'workload' | 'infrastructure') => void
  /** The watchdog is killing a host that has not answered its current run for `silentMs`. */
  readonly onHostHung?: (host: number, silentMs: number) => void
  /** A line a host wrote on stderr. */
  readonly onHostStderr?: (host: number, line: string) => void
  /** Events of the sandbox supervisor. */
  readonly onSupervisorEvent?: (event: SupervisorEvent) => void
}

export interface SandboxPoolOptions {
  /** Sandbox hosts (each a piscina pool of one isolated-vm thread); default: one per core, at most 8. */
  readonly processes?: number
  /**
   * `process` (default): each host is a child process, so a V8 abort inside an isolate costs
   * only that host. `thread`: hosts are piscina pools in this process — for trusted scripts
   * only: such an abort would take the node down.
   */
  readonly isolation?: SandboxIsolation
  /** Restarts of infrastructure failures allowed in `periodMs` before the sandbox supervisor gives up. */
  readonly intensity?: number
  readonly periodMs?: number
  readonly hooks?: SandboxHooks
  /** Faults injected into the host processes (tests only; see src/faults). */
  readonly faults?: readonly string[]
  /**
   * A descriptor every host process inherits and holds until it exits: the database lock, so
   * that a host orphaned by a node killed with -9 keeps the path locked until it has gone.
   */
  readonly inheritFd?: number
  /**
   * A host whose progress marker has not moved for twice the current run's time limit plus this
   * long is hung (something no time limit can interrupt) and is killed: its run is answered
   * WORKER_CRASHED and reported like a crash. Default 10 s.
   */
  readonly watchdogGraceMs?: number
}

/** A context registered with the pool: pinned to one host, its facts sent there once. */
export interface SandboxContextRef {
  readonly id: number
  readonly host: number
  readonly circle: string
}

interface ContextEntry {
  readonly ref: SandboxContextRef
  facts: SandboxContext
  /** Bumped when the facts change: a host that has an older version is sent them again. */
  version: number
}

/** A run from its submission to its outcome. */
interface PendingRun {
  readonly ctx: ContextEntry
  readonly request: RunRequest
  readonly origin: string | undefined
  readonly options: RunOptions
  readonly resolve: (outcome: RunOutcome) => void
  /** The seq of its RUN slice: how its host names it (-1 until sent). */
  seq: number
  done: boolean
  /** Slices of it queued or sent and not answered. */
  slices: number
  waiting: boolean
  /** Ends it when its time is up while it is suspended (its host cannot: it is not running it). */
  expiry: NodeJS.Timeout | undefined
  /** Calls in flight, by the run's call id. */
  calls: Map<number, AbortController> | undefined
}

/**
 * A part of a run that its host executes in one go: its start (RUN), or its continuation after a
 * call settled (RESUME) or its time ran out (EXPIRE). Each is answered once, in order.
 */
interface Slice {
  readonly run: PendingRun
  /** What continues the run (a RESUME or an EXPIRE); undefined for its start (RUN). Encoded when sent. */
  readonly next: Continuation | undefined
  seq: number
}

/** Figures of one host, for metrics and `/info`. */
export interface HostStats {
  readonly index: number
  readonly pid: number
  readonly up: boolean
  /** Slices waiting for the host or sent and not answered. */
  readonly queued: number
  /** Runs suspended on the host, waiting on calls. */
  readonly waiting: number
  readonly runs: number
  /** Frames sent (runs ÷ frames: how well hand-offs are batched). */
  readonly frames: number
  readonly crashes: number
  readonly rebuilds: number
  readonly restarts: number
}

/** Default number of hosts: one per core, up to this many (each host is a Node process of ~50 MB). */
const DEFAULT_MAX_HOSTS = 8
/**
 * Frames a host holds at once: one. A crash then has exactly one frame to settle (the run that
 * was executing answers WORKER_CRASHED, the rest go to the replacement host), and a thread host
 * needs it anyway: piscina would run a later frame before the rest of one whose thread died.
 * Batching keeps the host busy instead: every run queued while a frame is out leaves in the next.
 */
const MAX_FRAMES_IN_FLIGHT = 1
/** Runs in one frame, at most (bounds the frame's size and what one crash sends again). */
const MAX_RUNS_PER_FRAME = 256
const CLOSE_GRACE_MS = 5000
const DEFAULT_WATCHDOG_GRACE_MS = 10_000
/** How often the watchdog looks at the hosts. */
const WATCHDOG_INTERVAL_MS = 1_000
const DEFAULT_INTENSITY = 5
const DEFAULT_PERIOD_MS = 30_000

/** One host position: its queue outlives the host processes that serve it. */
class HostSlot {
  link: HostLink | undefined
  ready = false
  /** Slices not sent yet, in order. */
  queue: Slice[] = []
  /** Slices sent, in order; the host answers them in this order. */
  sent: Slice[] = []
  sentHead = 0
  /** Slices of each frame in flight that are not answered yet. */
  readonly frames: number[] = []
  /** Runs suspended on this incarnation of the host, by their seq. */
  readonly suspended = new Map<number, PendingRun>()
  /** Context facts this incarnation has: id → version. */
  known = new Map<number, number>()
  /** When the host was last seen making progress: a frame handed over, an outcome, its marker moving (watchdog). */
  progressAt = 0
  /** The progress marker as the watchdog last read it. */
  lastMarker: number | undefined
  seq = 0
  runs = 0
  framesSent = 0
  crashes = 0
  rebuilds = 0
  restarts = 0
  starts = 0
  constructor(readonly index: number) {}

  get inFlight(): number {
    return this.sent.length - this.sentHead
  }
}

/**
 * The sandbox: host processes, each running a piscina pool of one isolated-vm worker thread, and
 * the node-side queues that feed them.
 *
 * Every context is pinned to one host (by a hash of its key), and a host runs what it is given
 * in order on its one thread. So a context's runs run one at a time, in order, and that thread
 * is the only writer of the context's namespace, which lets it keep the namespace's size for
 * quotas. Runs submitted in one event-loop turn share one frame per host.
 *
 * Hosts are supervised: each is a `permanent` child of the pool's supervisor. When a host dies,
 * the run it was executing is answered WORKER_CRASHED and reported to `hooks.onCrash`; the runs
 * it had not started go, in order, to the host that replaces it. Such a death is blamed on the
 * workload and does not count toward the supervisor's intensity; a host that dies at start-up or
 * with nothing in flight does, and past the intensity the supervisor gives up — its parent sees
 * it — rather than restarting forever.
 *
 * @example
 * const pool = new SandboxPool({ processes: 1 })
 * await pool.start()
 * const ctx = pool.register({ circle, root, dbPathLabel: circle, limits, quota })
 * const outcome = await pool.run(ctx, { script: '1 + 1', caller: '', canWrite: false, timeoutMs: 1000 })
 * await pool.close()
 */
export class SandboxPool {
  readonly isolation: SandboxIsolation
  private readonly slots: HostSlot[] = []
  private readonly contexts = new Map<number, ContextEntry>()
  private readonly hooks: SandboxHooks
  private readonly intensity: number
  private readonly periodMs: number
  private readonly faults: readonly string[]
  private readonly inheritFd: number | undefined
  private nextContextId = 1
  private scheduled = false
  private closed = false
  private own: Supervisor | undefined
  private readonly watchdogGraceMs: number
  private watchdog: NodeJS.Timeout | undefined
  private watchdogAt = 0
  /** Encodes every frame to the hosts (one at a time: a frame is copied out when sent). */
  private readonly frameWriter = new FrameWriter()

  constructor(options: SandboxPoolOptions = {}) {
    const processes = positiveIntegerOption(options.processes, Math.min(availableParallelism(), DEFAULT_MAX_HOSTS), 'processes')
    this.isolation = options.isolation ?? 'process'
    if (this.isolation !== 'process' && this.isolation !== 'thread') {
      throw circlesError('INVALID_OPTION', 'options.isolation must be "process" or "thread"')
    }
    this.intensity = options.intensity ?? DEFAULT_INTENSITY
    this.periodMs = options.periodMs ?? DEFAULT_PERIOD_MS
    this.hooks = options.hooks ?? {}
    this.faults = options.faults ?? []
    this.inheritFd = options.inheritFd
    this.watchdogGraceMs = positiveIntegerOption(options.watchdogGraceMs, DEFAULT_WATCHDOG_GRACE_MS, 'watchdogGraceMs')
    for (let i = 0; i < processes; i++) this.slots.push(new HostSlot(i))
  }

  /**
   * Kill hosts whose current run is long overdue. Progress is read from a host's progress marker
   * (outcomes arrive a frame at a time): a host whose marker has not moved for twice the running
   * run's time limit plus the grace is hung. A round that itself ran late (the event loop was
   * blocked: outcomes may be waiting to be read) judges nothing.
   */
  private readonly watch = (): void => {
    const now = performance.now()
    const late = now - this.watchdogAt > 2 * WATCHDOG_INTERVAL_MS
    this.watchdogAt = now
    if (late) return
    for (const slot of this.slots) {
      const head = slot.sent[slot.sentHead]
      if (!slot.ready || head === undefined || slot.link === undefined) continue
      const marker = slot.link.progress()
      if (marker !== undefined && marker !== slot.lastMarker) {
        slot.lastMarker = marker
        slot.progressAt = Math.max(slot.progressAt, now - WATCHDOG_INTERVAL_MS)
        continue
      }
      const running = slot.sent.find((slice, i) => i >= slot.sentHead && slice.seq === marker) ?? head
      if (now - slot.progressAt > 2 * running.run.request.timeoutMs + this.watchdogGraceMs) {
        this.hooks.onHostHung?.(slot.index, now - slot.progressAt)
        slot.link.kill()
      }
    }
  }

  private startWatchdog(): void {
    if (this.watchdog !== undefined || this.closed) return
    this.watchdogAt = performance.now()
    this.watchdog = setInterval(this.watch, WATCHDOG_INTERVAL_MS)
    this.watchdog.unref()
  }

  /**
   * A supervisor for the hosts (one_for_one, each host `permanent`). The node makes it a child
   * of its root; a restarted sandbox supervisor serves the same queues.
   */
  supervisor(): Supervisor {
    this.startWatchdog()
    return new Supervisor({
      id: 'sandbox',
      flags: { strategy: 'one_for_one', intensity: this.intensity, periodMs: this.periodMs },
      children: this.slots.map((slot) => this.hostSpec(slot)),
      ...(this.hooks.onSupervisorEvent === undefined ? {} : { onEvent: this.hooks.onSupervisorEvent }),
    })
  }

  /**
   * The pool as a child of a node: its hosts' supervisor and its watchdog. Stopped, it stops the
   * hosts and answers whatever is still queued; should the hosts' supervisor give up, the child
   * exits with its error and the queues wait for the next start (its parent decides).
   */
  async startChild(): Promise<ChildHandle & { tree(): SupervisorTree }> {
    const supervisor = this.supervisor()
    await supervisor.start()
    const exits = new ExitListeners()
    let stopping = false
    supervisor.onExit((reason) => {
      if (!stopping) exits.exit(reason)
    })
    return {
      stop: async () => {
        stopping = true
        await supervisor.stop()
        this.shutDown()
        exits.exit({ type: 'normal' })
      },
      kill: () => {
        stopping = true
        supervisor.kill()
        this.shutDown()
        exits.exit({ type: 'error', error: new Error('sandbox killed') })
      },
      onExit: (listener) => exits.add(listener),
      tree: () => supervisor.tree(),
    }
  }

  /** Start the hosts under a supervisor of the pool's own (for a pool used outside a node). */
  async start(): Promise<void> {
    this.own = this.supervisor()
    await this.own.start()
  }

  /** Number of hosts. */
  get size(): number {
    return this.slots.length
  }

  /** Process ids of the hosts (this process's own in thread isolation; -1 while one restarts). */
  get pids(): readonly number[] {
    return this.slots.map((s) => s.link?.pid ?? -1)
  }

  /** Worker threads of hosts living in this process (`thread` isolation), for operators and tests. */
  get threads(): readonly Worker[] {
    return this.slots.flatMap((s) => s.link?.threads() ?? [])
  }

  get stats(): readonly HostStats[] {
    return this.slots.map((s) => ({
      index: s.index,
      pid: s.link?.pid ?? -1,
      up: s.ready,
      queued: s.queue.length + s.inFlight,
      waiting: s.suspended.size,
      runs: s.runs,
      frames: s.framesSent,
      crashes: s.crashes,
      rebuilds: s.rebuilds,
      restarts: s.restarts,
    }))
  }

  /** Runs waiting or running, across hosts. */
  get queued(): number {
    let n = 0
    for (const s of this.slots) n += s.queue.length + s.inFlight
    return n
  }

  /**
   * Register a context (pinned to its host by a hash of its key, or to `host` when given); call
   * again with new facts and the previous reference when they change.
   */
  register(facts: SandboxContext, previous?: SandboxContextRef, host?: number): SandboxContextRef {
    if (previous !== undefined) {
      const entry = this.contexts.get(previous.id)
      if (entry !== undefined) {
        entry.facts = facts
        entry.version++
        return entry.ref
      }
    }
    const index = host === undefined ? hostIndex(facts.circle, this.slots.length) : host % this.slots.length
    const ref: SandboxContextRef = { id: this.nextContextId++, host: index, circle: facts.circle }
    this.contexts.set(ref.id, { ref, facts, version: 1 })
    return ref
  }

  /**
   * Run a script in a registered context; resolves with its outcome. Never rejects. A run that
   * may call out (`request.canCall`) needs `options.calls`.
   */
  run(ref: SandboxContextRef, request: RunRequest, origin?: string, options: RunOptions = {}): Promise<RunOutcome> {
    const ctx = this.contexts.get(ref.id)
    if (this.closed) return Promise.resolve(failedRun('SHUTTING_DOWN', 'The sandbox is closed'))
    if (ctx === undefined) return Promise.resolve(failedRun('INTERNAL_ERROR', 'The context is not registered with the sandbox'))
    return new Promise((resolve) => {
      const run: PendingRun = { ctx, request, origin, options, resolve, seq: -1, done: false, slices: 1, waiting: false, expiry: undefined, calls: undefined }
      this.slots[ref.host]!.queue.push({ run, next: undefined, seq: -1 })
      this.schedule()
    })
  }

  /** Give `run` its outcome (once), and let go of what it holds: its expiry, its calls. */
  private finish(run: PendingRun, outcome: RunOutcome): void {
    if (run.done) return
    run.done = true
    clearTimeout(run.expiry)
    if (run.seq >= 0) this.slots[run.ctx.ref.host]!.suspended.delete(run.seq)
    if (run.calls !== undefined) for (const call of run.calls.values()) call.abort()
    const port = run.options.calls
    if (run.waiting) port?.waiting(false)
    run.resolve(outcome)
    port?.ended()
  }

  /** Queue a continuation of `run` on its host. */
  private continueRun(run: PendingRun, next: Continuation): void {
    if (run.done) return
    run.slices++
    if (run.waiting) {
      run.waiting = false
      run.options.calls?.waiting(false)
    }
    this.slots[run.ctx.ref.host]!.queue.push({ run, next, seq: -1 })
    this.schedule()
  }

  /** A slice ended with its run suspended: route the calls it started; wake it when its time is up. */
  private suspend(slot: HostSlot, run: PendingRun, reply: Extract<HostReply, { type: 'suspended' }>): void {
    slot.suspended.set(run.seq, run)
    if (run.slices === 0 && !run.waiting) {
      run.waiting = true
      run.options.calls?.waiting(true)
    }
    clearTimeout(run.expiry)
    run.expiry = setTimeout(() => this.continueRun(run, 'expire'), Math.max(0, reply.remainingMs))
    run.expiry.unref()
    for (const [callId, peer, script, timeoutMs] of reply.calls) {
      const port = run.options.calls
      if (port === undefined) {
        // Only a host that ignored the run's flags starts a call for it.
        this.continueRun(run, { callId, settled: failedRun('FORBIDDEN', 'This run may not call other contexts') })
        continue
      }
      const controller = new AbortController()
      ;(run.calls ??= new Map()).set(callId, controller)
      void port.call({ peer, script, timeoutMs, remainingMs: reply.remainingMs }, controller.signal).then((outcome) => {
        if (run.done) return
        run.calls!.delete(callId)
        this.continueRun(run, { callId, settled: outcome })
      })
    }
  }

  /** Stop the hosts (they finish what they were sent) and answer whatever is still queued. */
  async close(): Promise<void> {
    if (this.closed) return
    await this.own?.stop()
    this.shutDown()
  }

  /** After the supervisor stopped the hosts: answer what is left. */
  shutDown(): void {
    this.closed = true
    clearInterval(this.watchdog)
    this.watchdog = undefined
    for (const slot of this.slots) {
      for (const slice of slot.queue.splice(0)) this.finish(slice.run, failedRun('SHUTTING_DOWN', 'The sandbox stopped before running this task'))
      for (let i = slot.sentHead; i < slot.sent.length; i++) {
        this.finish(slot.sent[i]!.run, failedRun('WORKER_CRASHED', 'The sandbox stopped while running this task'))
      }
      for (const run of [...slot.suspended.values()]) this.finish(run, failedRun('WORKER_CRASHED', 'The sandbox stopped while this task waited on a call'))
      slot.sent = []
      slot.sentHead = 0
    }
  }


  private hostSpec(slot: HostSlot): ChildSpec {
    return {
      id: `host-${slot.index}`,
      restart: 'permanent',
      shutdown: CLOSE_GRACE_MS + 1000,
      start: () => this.startHost(slot),
    }
  }

  /** Start a host for the slot; resolves once its thread is up, rejects if it dies first. */
  private startHost(slot: HostSlot): Promise<ChildHandle> {
    const exits = new ExitListeners()
    let stopping = false
    let settled = false
    return new Promise<ChildHandle>((resolve, reject) => {
      const handle: ChildHandle = {
        stop: async () => {
          stopping = true
          await link.close(CLOSE_GRACE_MS)
        },
        kill: () => {
          stopping = true
          link.kill()
        },
        onExit: (listener) => exits.add(listener),
      }
      const link: HostLink = openHost(this.isolation, {
        onReply: (reply) => {
          if (slot.link !== link) return
          if (reply.type === 'ready') {
            slot.ready = true
            settled = true
            if (slot.starts++ > 0) slot.restarts++
            resolve(handle)
            if (slot.queue.length > 0) this.schedule()
            return
          }
          this.onOutcome(slot, link, reply)
        },
        onExit: (exit) => {
          if (slot.link !== link) return
          const blame = this.onHostExit(slot, exit, stopping)
          this.hooks.onHostExit?.(slot.index, exit, stopping ? 'none' : blame)
          const why = describeExit(exit)
          if (!settled) {
            settled = true
            reject(new Error(`sandbox host ${slot.index} did not start: ${why}`))
            return
          }
          if (stopping) {
            exits.exit({ type: 'normal' })
            return
          }
          const error = new Error(`sandbox host ${slot.index} (pid ${link.pid}) exited: ${why}`)
          const reason: ExitReason = blame === 'workload' ? { type: 'error', error, blame } : { type: 'error', error }
          exits.exit(reason)
        },
        onStderr: (line) => this.hooks.onHostStderr?.(slot.index, line),
      }, { faults: this.hostFaults(slot), ...(this.inheritFd === undefined ? {} : { inheritFd: this.inheritFd }) })
      slot.link = link
      slot.ready = false
      slot.known = new Map()
      slot.seq = 0
    })
  }

  /** Faults for the next host of a slot: `host-crash-on-restart` is `host-crash-on-start` once the slot's first host has run. */
  private hostFaults(slot: HostSlot): readonly string[] {
    const faults = this.faults.filter((name) => name !== 'host-crash-on-restart')
    return slot.starts > 0 && this.faults.includes('host-crash-on-restart') ? [...faults, 'host-crash-on-start'] : faults
  }

  /**
   * A host is gone. Its progress marker names the slice it was executing: that slice's run is
   * answered WORKER_CRASHED (and reported: the crash quarantine); the runs it had not started go,
   * in order, to the host that replaces it. Runs it had completed but whose outcomes were still
   * in its buffer changed nothing and called nobody (the reply to a slice that changed data or
   * suspended is written before the next slice starts): they run again, except in the crashed
   * run's own context, where that could let them see what the crashed run half did — those are
   * answered WORKER_CRASHED. Runs that had started and were waiting on calls, or about to resume,
   * lived on the dead host: WORKER_CRASHED too. Returns whom the death is blamed on: the workload
   * when a slice was executing.
   */
  private onHostExit(slot: HostSlot, exit: HostExit, expected: boolean): 'workload' | 'infrastructure' {
    slot.link = undefined
    slot.ready = false
    slot.frames.length = 0
    const sent = slot.sent.slice(slot.sentHead)
    slot.sent = []
    slot.sentHead = 0
    const started = exit.started ?? sent[0]?.seq
    const culprit = sent.find((slice) => slice.seq === started)
    const again: Slice[] = []
    /** Runs that had started on the dead host and were not executing: waiting on calls, or about to resume. */
    const lost = [...slot.suspended.values()]
    for (const slice of sent) {
      const { run } = slice
      if (slice === culprit) {
        slot.crashes++
        this.finish(
          run,
          failedRun(
            'WORKER_CRASHED',
            expected
              ? 'The sandbox stopped while running this task'
              : 'The sandbox process running this task died (the script may have exhausted its memory); the task was not completed',
          ),
        )
        if (!expected) this.hooks.onCrash?.(sourceOf(run))
        continue
      }
      if (slice.next !== undefined) {
        lost.push(run)
        continue
      }
      if (slice.seq < started! && culprit !== undefined && run.ctx === culprit.run.ctx) {
        this.finish(run, failedRun('WORKER_CRASHED', 'The task ran, changing nothing, but its answer was lost when its sandbox process died; running it again is safe'))
        continue
      }
      const refusal = this.hooks.refuse?.(sourceOf(run))
      if (refusal !== undefined) this.finish(run, refusal)
      else {
        run.seq = -1
        slice.seq = -1
        again.push(slice)
      }
    }
    for (const run of lost) {
      this.finish(run, failedRun('WORKER_CRASHED', 'The sandbox process holding this task, which had started and was waiting on a call, died; the task was not completed'))
    }
    slot.suspended.clear()
    slot.queue = again.concat(slot.queue)
    return culprit === undefined ? 'infrastructure' : 'workload'
  }

  private onOutcome(slot: HostSlot, link: HostLink, reply: Exclude<HostReply, { type: 'ready' }>): void {
    if (reply.type === 'outcome' && (reply.flags & FLAG_DETACHED) !== 0) {
      // A suspended run whose context another run's abort took with it.
      const run = slot.suspended.get(reply.seq)
      if (run !== undefined) {
        slot.runs++
        this.finish(run, reply.outcome)
      }
      return
    }
    const slice = slot.sent[slot.sentHead]
    if (slice === undefined || slice.seq !== reply.seq) {
      // Only a broken host answers out of order: treat it as dead.
      link.kill()
      return
    }
    slot.sent[slot.sentHead++] = undefined as unknown as Slice
    if (slot.sentHead > 1024 && slot.sentHead * 2 > slot.sent.length) {
      slot.sent = slot.sent.slice(slot.sentHead)
      slot.sentHead = 0
    }
    slot.progressAt = performance.now()
    const { run } = slice
    run.slices--
    if (reply.type === 'outcome') {
      slot.runs++
      if ((reply.flags & FLAG_REBUILT) !== 0) slot.rebuilds++
      this.finish(run, reply.outcome)
    } else if (reply.type === 'suspended' && !run.done) {
      this.suspend(slot, run, reply)
    }
    if (--slot.frames[0]! === 0) {
      slot.frames.shift()
      if (slot.queue.length > 0) this.schedule()
    }
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.scheduled = false
        for (const slot of this.slots) {
      // A restarting host keeps its queue: its contexts are pinned to it, and order matters.
      while (slot.ready && slot.queue.length > 0 && slot.frames.length < MAX_FRAMES_IN_FLIGHT) this.sendFrame(slot)
    }
  }

  private sendFrame(slot: HostSlot): void {
    const frame = this.frameWriter
    frame.begin()
    let taken = 0
    let sent = 0
    // Up to MAX_RUNS_PER_FRAME slices, and past FRAME_SOFT_BYTES the frame ends with the slice
    // that passed it (what one crash sends again, and what the host buffers, stay bounded).
    while (taken < slot.queue.length && taken < MAX_RUNS_PER_FRAME && frame.bytes < FRAME_SOFT_BYTES) {
      const slice = slot.queue[taken++]!
      const { run } = slice
      if (run.done) continue
      if (slice.next !== undefined) {
        if (slice.next === 'expire') frame.expire(run.seq)
        else frame.resume(run.seq, slice.next.callId, slice.next.settled)
      } else if (run.options.signal?.aborted === true) {
        this.finish(run, failedRun('CALL_CANCELLED'))
        continue
      } else {
        const { ctx } = run
        if (slot.known.get(ctx.ref.id) !== ctx.version) {
          frame.context(ctx.ref.id, ctx.facts)
          slot.known.set(ctx.ref.id, ctx.version)
        }
        frame.run(ctx.ref.id, run.request)
        run.seq = slot.seq
      }
      slice.seq = slot.seq++
      slot.sent.push(slice)
      sent++
    }
    slot.queue = taken === slot.queue.length ? [] : slot.queue.slice(taken)
    if (sent === 0) return
    if (slot.inFlight === sent) slot.progressAt = performance.now()
    slot.frames.push(sent)
    slot.framesSent++
    slot.link!.send(frame.end())
  }
}

/** The host a context is pinned to among `hosts`: FNV-1a of its key. */
export function hostIndex(circle: string, hosts: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < circle.length; i++) hash = Math.imul(hash ^ circle.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % hosts
}

function sourceOf(run: PendingRun): RunSource {
  return { circle: run.ctx.ref.circle, origin: run.origin, caller: run.request.caller, callingContext: run.options.caller }
}

function describeExit(exit: HostExit): string {
  const how = exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`
  const tail = exit.stderrTail.trim().split('\n').slice(-3).join(' | ')
  return tail === '' ? how : `${how}: ${tail.slice(-500)}`
}

import { circlesError } from '../errors/index.js'
import {
  DEFAULT_FLAGS,
  type ChildHandle,
  type ChildSpec,
  type ExitReason,
  type Restart,
  type Strategy,
  type SupervisorFlags,
} from './child-spec.js'
import { RestartIntensity } from './restart-intensity.js'
import { ExitListeners } from './exit-listeners.js'

export type ChildStatus = 'starting' | 'running' | 'restarting' | 'stopped'

interface Entry {
  readonly spec: ChildSpec
  handle: ChildHandle | undefined
  status: ChildStatus
  restarts: number
  /** Incremented on every start: exits reported by an older incarnation are ignored. */
  generation: number
  /** Set while the supervisor itself stops the child, so its exit is not taken as a failure. */
  stopping: boolean
  /** Added after construction (startChild): listed by count in the tree when the supervisor has `dynamic`. */
  readonly added: boolean
  /** The handle being stopped (a drain in progress): still found by `child()` until it has stopped. */
  draining?: ChildHandle | undefined
}

export type StartChildResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'already_present' | 'start_failed' | 'stopped'; readonly error?: Error }

export type TerminateChildResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'not_found' }

export interface ChildInfo {
  readonly id: string
  readonly status: ChildStatus
  readonly restarts: number
}

/** A supervisor and its children as they run now (for the tree in docs/operations.md, `/healthz` and tests). */
export interface SupervisorTree {
  readonly id: string
  readonly strategy: Strategy
  readonly intensity: number
  readonly periodMs: number
  readonly state: 'idle' | 'running' | 'stopping' | 'stopped'
  readonly children: readonly (
    | { readonly type: 'worker'; readonly id: string; readonly restart: Restart; readonly status: ChildStatus; readonly restarts: number }
    | ({ readonly type: 'supervisor'; readonly restart: Restart; readonly status: ChildStatus; readonly restarts: number } & SupervisorTree)
  )[]
  /** Dynamic children of one kind are summarised by count when there are many. */
  readonly dynamic?: { readonly count: number; readonly restart: Restart }
}

export interface SupervisorOptions {
  /** The supervisor's own name (in events and the tree). */
  readonly id?: string
  readonly flags?: Partial<SupervisorFlags>
  readonly children?: readonly ChildSpec[]
  /**
   * Children added later with a restart type and id prefix known in advance (peer actors,
   * connections): the tree lists them as a count instead of one by one.
   */
  readonly dynamic?: { readonly restart: Restart }
  /** Called on every start, exit, restart and escalation (for logs and metrics). */
  readonly onEvent?: (event: SupervisorEvent) => void
  /**
   * The clock restart intensity is measured with (default: `performance.now()`). Tests pass a
   * simulated clock (xstate's `SimulatedClock` fits) to step past the period without waiting.
   */
  readonly clock?: { now(): number }
}

export type SupervisorEvent =
  | { readonly type: 'child_started'; readonly supervisor: string; readonly id: string; readonly restarts: number }
  | { readonly type: 'child_exited'; readonly supervisor: string; readonly id: string; readonly reason: ExitReason }
  | { readonly type: 'child_restarted'; readonly supervisor: string; readonly id: string; readonly reason: ExitReason; readonly counted: boolean }
  | { readonly type: 'escalated'; readonly supervisor: string; readonly id: string; readonly reason: ExitReason }

function checkFlags(flags: SupervisorFlags): SupervisorFlags {
  if (!['one_for_one', 'one_for_all', 'rest_for_one'].includes(flags.strategy)) {
    throw circlesError('INVALID_OPTION', 'flags.strategy must be one_for_one, one_for_all or rest_for_one')
  }
  if (!Number.isInteger(flags.intensity) || flags.intensity < 0) {
    throw circlesError('INVALID_OPTION', 'flags.intensity must be a non-negative integer')
  }
  if (!(flags.periodMs > 0)) throw circlesError('INVALID_OPTION', 'flags.periodMs must be a positive number')
  return flags
}

function checkSpec(spec: ChildSpec): void {
  if (typeof spec.id !== 'string' || spec.id === '') throw circlesError('INVALID_OPTION', 'spec.id must be a non-empty string')
  if (!['permanent', 'transient', 'temporary'].includes(spec.restart)) {
    throw circlesError('INVALID_OPTION', `spec.restart of "${spec.id}" must be permanent, transient or temporary`)
  }
  if (spec.shutdown !== 'brutal_kill' && !(Number.isInteger(spec.shutdown) && spec.shutdown >= 0)) {
    throw circlesError('INVALID_OPTION', `spec.shutdown of "${spec.id}" must be "brutal_kill" or a non-negative integer (ms)`)
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/**
 * An OTP-style supervisor. Children are specs (data); the supervisor starts them in order,
 * restarts them by their restart type and its strategy, stops them in reverse order honouring
 * each child's shutdown, and gives up — stopping everything and exiting with an error, which its
 * own supervisor sees — when restarts exceed its intensity within its period.
 *
 * A supervisor is itself a {@link ChildHandle}, so supervisors nest into a tree.
 *
 * @example
 * const root = new Supervisor({ id: 'root', flags: { strategy: 'one_for_one' }, children: [sandboxSpec, gatewaySpec] })
 * await root.start()
 */
export class Supervisor implements ChildHandle {
  readonly id: string
  private readonly flags: SupervisorFlags
  private readonly entries = new Map<string, Entry>()
  private readonly intensity: RestartIntensity
  private readonly exits = new ExitListeners()
  private readonly onEvent: ((event: SupervisorEvent) => void) | undefined
  private readonly dynamic: { readonly restart: Restart } | undefined
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  /** Serialises restarts so that strategies see a consistent set of children. */
  private work: Promise<void> = Promise.resolve()

  constructor(options: SupervisorOptions = {}) {
    this.id = options.id ?? 'supervisor'
    this.flags = checkFlags({ ...DEFAULT_FLAGS, ...options.flags })
    const clock = options.clock
    this.intensity = new RestartIntensity(this.flags.intensity, this.flags.periodMs, clock === undefined ? undefined : () => clock.now())
    this.onEvent = options.onEvent
    this.dynamic = options.dynamic
    for (const spec of options.children ?? []) {
      checkSpec(spec)
      if (this.entries.has(spec.id)) throw circlesError('INVALID_OPTION', `duplicate child id "${spec.id}"`)
      this.entries.set(spec.id, { spec, handle: undefined, status: 'stopped', restarts: 0, generation: 0, stopping: false, added: false })
    }
  }

  /** Whether the supervisor is running (started, not stopped or given up). */
  get running(): boolean {
    return this.state === 'running'
  }

  /** Start every child in order. If one fails to start, the ones already started are stopped and the error is thrown. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw circlesError('INVALID_OPTION', 'a supervisor can be started once')
    this.state = 'running'
    const started: Entry[] = []
    for (const entry of this.entries.values()) {
      try {
        await this.startEntry(entry)
        started.push(entry)
      } catch (error) {
        for (const e of started.reverse()) await this.stopEntry(e)
        this.state = 'stopped'
        throw error
      }
    }
  }

  /** Add and start a child. */
  async startChild(spec: ChildSpec): Promise<StartChildResult> {
    checkSpec(spec)
    if (this.state !== 'running') return { ok: false, reason: 'stopped' }
    if (this.entries.has(spec.id)) return { ok: false, reason: 'already_present' }
    const entry: Entry = { spec, handle: undefined, status: 'stopped', restarts: 0, generation: 0, stopping: false, added: true }
    this.entries.set(spec.id, entry)
    try {
      await this.startEntry(entry)
      return { ok: true }
    } catch (error) {
      this.entries.delete(spec.id)
      return { ok: false, reason: 'start_failed', error: error as Error }
    }
  }

  /**
   * Add and start a child whose `start` is synchronous — for children created on a hot path
   * (a peer actor on its first message, a connection on its upgrade). Its handle is registered
   * before this returns, so no exit can go unseen.
   */
  startChildSync(spec: ChildSpec): StartChildResult {
    checkSpec(spec)
    if (this.state !== 'running') return { ok: false, reason: 'stopped' }
    if (this.entries.has(spec.id)) return { ok: false, reason: 'already_present' }
    const entry: Entry = { spec, handle: undefined, status: 'starting', restarts: 0, generation: 1, stopping: false, added: true }
    this.entries.set(spec.id, entry)
    try {
      const started = spec.start()
      if (isPromise(started)) {
        // Refused, and the child it is starting anyway is killed once it is up: a child the
        // supervisor does not hold must not keep running.
        this.entries.delete(spec.id)
        started.then((handle) => handle.kill(), () => {})
        return { ok: false, reason: 'start_failed', error: circlesError('INVALID_OPTION', `startChildSync: the start of "${spec.id}" is asynchronous`) }
      }
      this.attach(entry, entry.generation, started)
      return { ok: true }
    } catch (error) {
      this.entries.delete(spec.id)
      return { ok: false, reason: 'start_failed', error: error as Error }
    }
  }

  /** Stop a child (honouring its shutdown) and forget it. */
  async removeChild(id: string): Promise<TerminateChildResult> {
    const entry = this.entries.get(id)
    if (entry === undefined) return { ok: false, reason: 'not_found' }
    this.entries.delete(id)
    await this.stopEntry(entry)
    return { ok: true }
  }

  /** Stop a child (honouring its shutdown) but keep its spec; `restartChild` starts it again. */
  async terminateChild(id: string): Promise<TerminateChildResult> {
    const entry = this.entries.get(id)
    if (entry === undefined) return { ok: false, reason: 'not_found' }
    await this.stopEntry(entry)
    return { ok: true }
  }

  async restartChild(id: string): Promise<StartChildResult> {
    const entry = this.entries.get(id)
    if (entry === undefined || this.state !== 'running') return { ok: false, reason: 'stopped' }
    if (entry.status !== 'stopped') return { ok: false, reason: 'already_present' }
    try {
      await this.startEntry(entry)
      return { ok: true }
    } catch (error) {
      return { ok: false, reason: 'start_failed', error: error as Error }
    }
  }

  whichChildren(): ChildInfo[] {
    return [...this.entries.values()].map((e) => ({ id: e.spec.id, status: e.status, restarts: e.restarts }))
  }

  /** How many children are running. */
  get size(): number {
    return this.entries.size
  }

  /** The handle of a child running, or being stopped (draining), if any. */
  child(id: string): ChildHandle | undefined {
    const entry = this.entries.get(id)
    return entry?.status === 'running' ? entry.handle : entry?.draining
  }

  /** This supervisor and its children, nested supervisors included, as they are now. */
  tree(): SupervisorTree {
    const children: SupervisorTree['children'][number][] = []
    let dynamicCount = 0
    for (const e of this.entries.values()) {
      if (this.dynamic !== undefined && e.added) {
        dynamicCount++
        continue
      }
      const sub = e.handle?.tree?.()
      if (sub !== undefined) {
        children.push({ ...sub, type: 'supervisor', restart: e.spec.restart, status: e.status, restarts: e.restarts })
      } else {
        children.push({ type: 'worker', id: e.spec.id, restart: e.spec.restart, status: e.status, restarts: e.restarts })
      }
    }
    return {
      id: this.id,
      strategy: this.flags.strategy,
      intensity: this.flags.intensity,
      periodMs: this.flags.periodMs,
      state: this.state,
      children,
      ...(this.dynamic === undefined ? {} : { dynamic: { count: dynamicCount, restart: this.dynamic.restart } }),
    }
  }

  /** Stop every child in reverse start order, then exit normally. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    this.state = 'stopping'
    await this.work
    await this.stopInReverse([...this.entries.values()])
    this.exit({ type: 'normal' })
  }

  /**
   * Stop entries in reverse order. Children added at run time (connections, peer actors) are
   * independent of each other and are stopped together, as OTP does for dynamic children; the
   * others one after the other.
   */
  private async stopInReverse(entries: readonly Entry[]): Promise<void> {
    const reversed = [...entries].reverse()
    let i = 0
    while (i < reversed.length) {
      if (!reversed[i]!.added) {
        await this.stopEntry(reversed[i]!)
        i++
        continue
      }
      const group: Entry[] = []
      while (i < reversed.length && reversed[i]!.added) group.push(reversed[i++]!)
      await Promise.all(group.map((e) => this.stopEntry(e)))
    }
  }

  kill(): void {
    if (this.state === 'stopped') return
    this.state = 'stopping'
    for (const entry of [...this.entries.values()].reverse()) {
      entry.stopping = true
      entry.status = 'stopped'
      entry.handle?.kill()
      entry.handle = undefined
    }
    this.exit({ type: 'error', error: new Error(`supervisor ${this.id} killed`) })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  private exit(reason: ExitReason): void {
    this.state = 'stopped'
    this.exits.exit(reason)
  }

  private startEntry(entry: Entry): Promise<void> | undefined {
    entry.status = 'starting'
    entry.stopping = false
    const generation = ++entry.generation
    const started = entry.spec.start()
    if (isPromise(started)) return started.then((handle) => this.attach(entry, generation, handle))
    this.attach(entry, generation, started)
    return undefined
  }

  private attach(entry: Entry, generation: number, handle: ChildHandle): void {
    entry.handle = handle
    entry.status = 'running'
    this.notify({ type: 'child_started', supervisor: this.id, id: entry.spec.id, restarts: entry.restarts })
    handle.onExit((reason) => {
      if (entry.generation !== generation || entry.stopping) return
      if (entry.spec.restart === 'temporary' && this.flags.strategy !== 'one_for_all') {
        // Nothing to restart: forget it at once (dynamic children come and go in large numbers).
        this.forget(entry, reason)
        return
      }
      this.enqueue(() => this.onChildExit(entry, reason))
    })
  }

  /**
   * Restart work runs one piece at a time, in order. A piece that throws (a bug in this class, or
   * a child handle whose kill throws) must not leave the chain rejected — every later exit would
   * then go unhandled, and stop() would reject: the supervisor fails instead, as an OTP
   * supervisor whose own code crashed, and its parent decides.
   */
  private enqueue(piece: () => Promise<void>): void {
    this.work = this.work.then(piece).catch((error: unknown) => this.fail(error as Error))
  }

  private async fail(error: Error): Promise<void> {
    if (this.state !== 'running') return
    this.state = 'stopping'
    await this.stopInReverse([...this.entries.values()]).catch(() => undefined)
    this.exit({ type: 'error', error: new Error(`${this.id}: supervision failed: ${error.message}`) })
  }

  /** Tell the observer (logs, metrics). An observer that throws must not stop supervision. */
  private notify(event: SupervisorEvent): void {
    try {
      this.onEvent?.(event)
    } catch {
      // Its failure is its own to report; the restart it was told about still happens.
    }
  }

  private forget(entry: Entry, reason: ExitReason): void {
    if (this.entries.get(entry.spec.id) !== entry) return
    entry.handle = undefined
    entry.status = 'stopped'
    this.entries.delete(entry.spec.id)
    this.notify({ type: 'child_exited', supervisor: this.id, id: entry.spec.id, reason })
  }

  private async stopEntry(entry: Entry): Promise<void> {
    const handle = entry.handle
    entry.stopping = true
    entry.status = 'stopped'
    entry.handle = undefined
    if (handle === undefined) return
    const { shutdown } = entry.spec
    if (shutdown === 'brutal_kill') {
      handle.kill()
      return
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), shutdown)
    })
    entry.draining = handle
    const outcome = await Promise.race([handle.stop().then(() => 'stopped' as const, () => 'stopped' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'timeout') handle.kill()
    if (entry.draining === handle) entry.draining = undefined
  }

  private async onChildExit(entry: Entry, reason: ExitReason): Promise<void> {
    if (this.state !== 'running' || this.entries.get(entry.spec.id) !== entry) return
    entry.handle = undefined
    entry.status = 'stopped'
    this.notify({ type: 'child_exited', supervisor: this.id, id: entry.spec.id, reason })
    const { restart } = entry.spec
    const wanted = restart === 'permanent' || (restart === 'transient' && reason.type === 'error')
    if (!wanted) {
      if (restart === 'temporary') this.entries.delete(entry.spec.id)
      return
    }
    const counted = !(reason.type === 'error' && reason.blame === 'workload')
    if (counted && !this.intensity.record()) {
      this.notify({ type: 'escalated', supervisor: this.id, id: entry.spec.id, reason })
      this.state = 'stopping'
      await this.stopInReverse([...this.entries.values()])
      const cause = reason.type === 'error' ? reason.error.message : 'normal exit'
      this.exit({
        type: 'error',
        error: new Error(`${this.id}: restart intensity exceeded (${this.flags.intensity} in ${this.flags.periodMs} ms); last: ${entry.spec.id}: ${cause}`),
      })
      return
    }
    const all = [...this.entries.values()]
    const index = all.indexOf(entry)
    const affected =
      this.flags.strategy === 'one_for_one' ? [entry] : this.flags.strategy === 'one_for_all' ? all : all.slice(index)
    await this.stopInReverse(affected.filter((e) => e !== entry))
    // Temporary children are stopped with the others but never restarted.
    const restarted = affected.filter((e) => e.spec.restart !== 'temporary')
    for (const e of affected) {
      if (e.spec.restart === 'temporary') this.entries.delete(e.spec.id)
    }
    for (const e of restarted) {
      e.status = 'restarting'
      e.restarts++
    }
    this.notify({ type: 'child_restarted', supervisor: this.id, id: entry.spec.id, reason, counted })
    for (const e of restarted) {
      try {
        await this.startEntry(e)
      } catch (error) {
        // A child that cannot start counts as one more failure: the same path decides.
        this.enqueue(() => this.onChildExit(e, { type: 'error', error: error as Error }))
      }
    }
  }
}

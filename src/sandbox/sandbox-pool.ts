import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { positiveIntegerOption } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { openHost, type HostChannel, type SandboxIsolation } from './host-channel.js'
import type { HostReply, HostRequest } from './host-messages.js'
import { failedOutcome, type ContextBatch, type ContextBatchResult } from './messages.js'

export interface SandboxPoolOptions {
  /** Sandbox hosts (each a piscina pool of one isolated-vm thread); default: one per core, at most 8. */
  readonly processes?: number
  /**
   * `process` (default): each host is a child process, so a V8 abort inside an isolate costs
   * only that host. `thread`: hosts are piscina pools in this process — fewer hops and lower
   * latency, for trusted scripts only: such an abort would take the node down.
   */
  readonly isolation?: SandboxIsolation
}

interface Pending {
  readonly batch: ContextBatch
  readonly resolve: (result: ContextBatchResult) => void
}

interface Host {
  readonly index: number
  channel: HostChannel
  ready: boolean
  /** Batches waiting for this host (submitted this turn, or while it restarts). */
  pending: Pending[]
  /** Tasks sent to this host and not answered yet, by task id. */
  readonly inFlight: Map<number, Pending[]>
  /** Consecutive deaths since the host last came up; sets the restart back-off. */
  restarts: number
  restartTimer: NodeJS.Timeout | undefined
}

/** Default number of hosts: one per core, up to this many (each host is a Node process of ~50 MB). */
const DEFAULT_MAX_HOSTS = 8

/**
 * Hand-offs a host may hold at once. Its one thread runs them in order anyway, so a second one
 * in flight buys little overlap, while waiting for the first lets the next carry everything
 * queued meanwhile: fewer, fuller hand-offs (each costs a fixed ~0.2 ms of process and thread
 * wake-ups). Measured on 2 cores: 1 is as fast as 2 or unbounded, with less CPU.
 */
const MAX_HANDOFFS_IN_FLIGHT = 1
const RESTART_DELAY_MS = [0, 100, 250, 500, 1000, 2000, 5000] as const
const CLOSE_GRACE_MS = 5000

function crashed(batch: ContextBatch, message: string): ContextBatchResult {
  const outcome = failedOutcome('WORKER_CRASHED', message)
  return { outcomes: batch.runs.map(() => outcome) }
}

/**
 * The sandbox: host processes, each running a piscina pool of one isolated-vm worker thread.
 *
 * Every context is pinned to one host (by a hash of its key), and a host runs what it is given
 * in order on its one thread. So a context may have several batches in flight and they still
 * run one script at a time, in order; and that thread is the only writer of the context's
 * namespace, which lets it keep the namespace's size for quotas.
 *
 * Batches submitted in one event-loop turn are coalesced into one hand-off per host (a hand-off
 * costs tens of microseconds; a warm run a few). A host that dies — a worker thread crash, or
 * V8 aborting on an allocation it cannot survive — is started again; every run it held is
 * answered WORKER_CRASHED. Nothing is left hanging and the node itself is never at risk.
 *
 * @example
 * const pool = new SandboxPool()
 * await pool.ready()
 * const { outcomes } = await pool.run(batch)
 */
export class SandboxPool {
  private readonly hosts: Host[] = []
  private readonly isolation: SandboxIsolation
  private scheduled = false
  private closed = false
  private nextTaskId = 1
  private readyWaiters: (() => void)[] = []
  /** Hand-offs, batches and runs dispatched, and host restarts (for metrics). */
  readonly counters = { tasks: 0, batches: 0, runs: 0, crashes: 0 }

  constructor(options: SandboxPoolOptions = {}) {
    const processes = positiveIntegerOption(options.processes, Math.min(availableParallelism(), DEFAULT_MAX_HOSTS), 'processes')
    this.isolation = options.isolation ?? 'process'
    if (this.isolation !== 'process' && this.isolation !== 'thread') {
      throw circlesError('INVALID_OPTION', 'options.isolation must be "process" or "thread"')
    }
    for (let i = 0; i < processes; i++) {
      const host: Host = {
        index: i,
        channel: undefined as unknown as HostChannel,
        ready: false,
        pending: [],
        inFlight: new Map(),
        restarts: 0,
        restartTimer: undefined,
      }
      this.hosts.push(host)
      this.spawn(host)
    }
  }

  /** Process ids of the hosts (for operators, and for tests that kill one); this process's own in thread isolation. */
  get pids(): readonly number[] {
    return this.hosts.map((h) => h.channel.pid)
  }

  /** Worker threads of hosts living in this process (`thread` isolation), for operators and tests. */
  get threads(): readonly Worker[] {
    return this.hosts.flatMap((h) => h.channel.threads())
  }

  /** Batches submitted and not yet answered. */
  get queued(): number {
    let n = 0
    for (const host of this.hosts) {
      n += host.pending.length
      for (const group of host.inFlight.values()) n += group.length
    }
    return n
  }

  /** Resolves once every host has started (module loaded, threads up). */
  ready(): Promise<void> {
    if (this.hosts.every((h) => h.ready)) return Promise.resolve()
    return new Promise((resolve) => this.readyWaiters.push(resolve))
  }

  private spawn(host: Host): void {
    host.ready = false
    const channel: HostChannel = openHost(this.isolation, {
      onReply: (reply) => {
        if (host.channel === channel) this.onReply(host, reply)
      },
      onExit: (lastWords) => {
        if (host.channel === channel) this.onExit(host, lastWords)
      },
    })
    host.channel = channel
  }

  private onReply(host: Host, reply: HostReply): void {
    switch (reply.type) {
      case 'ready':
        host.ready = true
        host.restarts = 0
        if (this.hosts.every((h) => h.ready)) for (const resolve of this.readyWaiters.splice(0)) resolve()
        if (host.pending.length > 0) this.schedule()
        break
      case 'result':
      case 'failed': {
        const group = host.inFlight.get(reply.id)
        if (group === undefined) return
        host.inFlight.delete(reply.id)
        if (reply.type === 'failed') this.counters.crashes++
        group.forEach((p, i) =>
          p.resolve(
            reply.type === 'result'
              ? (reply.results[i] ?? crashed(p.batch, 'The sandbox returned no result'))
              : crashed(p.batch, `The worker thread running this task stopped: ${reply.message}`),
          ),
        )
        if (host.pending.length > 0) this.schedule()
        break
      }
    }
  }

  private onExit(host: Host, lastWords: string): void {
    host.ready = false
    const oom = /is_heap_oom|out of memory/i.test(lastWords)
    const why = oom
      ? 'The sandbox process running this task was killed by a script that exhausted memory'
      : 'The sandbox process running this task stopped'
    if (host.inFlight.size > 0) this.counters.crashes++
    for (const group of host.inFlight.values()) for (const p of group) p.resolve(crashed(p.batch, why))
    host.inFlight.clear()
    if (this.closed) return
    host.restarts++
    const delay = RESTART_DELAY_MS[Math.min(host.restarts - 1, RESTART_DELAY_MS.length - 1)]!
    host.restartTimer = setTimeout(() => {
      host.restartTimer = undefined
      if (!this.closed) this.spawn(host)
    }, delay)
  }

  /** Run a context's batch; resolves with one outcome per run, in order. Never rejects. */
  run(batch: ContextBatch): Promise<ContextBatchResult> {
    if (this.closed) return Promise.resolve(crashed(batch, 'The sandbox is closed'))
    return new Promise((resolve) => {
      this.hosts[this.hostIndex(batch.circle)]!.pending.push({ batch, resolve })
      this.schedule()
    })
  }

  /** The host a context is pinned to: FNV-1a of its key. */
  private hostIndex(circle: string): number {
    let hash = 0x811c9dc5
    for (let i = 0; i < circle.length; i++) hash = Math.imul(hash ^ circle.charCodeAt(i), 0x01000193)
    return (hash >>> 0) % this.hosts.length
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.scheduled = false
    for (const host of this.hosts) {
      // A restarting host keeps its batches: the context is pinned to it, and order matters.
      if (!host.ready || host.pending.length === 0) continue
      // A busy host gets everything queued meanwhile in one hand-off when it answers.
      if (host.inFlight.size >= MAX_HANDOFFS_IN_FLIGHT) continue
      const group = host.pending
      host.pending = []
      this.dispatch(host, group)
    }
  }

  private dispatch(host: Host, group: Pending[]): void {
    const id = this.nextTaskId++
    host.inFlight.set(id, group)
    this.counters.tasks++
    this.counters.batches += group.length
    for (const p of group) this.counters.runs += p.batch.runs.length
    const request: HostRequest = { type: 'run', id, batches: group.map((p) => p.batch) }
    host.channel.send(request)
  }

  /** Stop taking work, let running tasks finish, then stop the host processes. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const host of this.hosts) {
      for (const p of host.pending.splice(0)) p.resolve(crashed(p.batch, 'The sandbox is closed'))
      clearTimeout(host.restartTimer)
    }
    await Promise.all(this.hosts.map((host) => host.channel.close(CLOSE_GRACE_MS)))
  }
}

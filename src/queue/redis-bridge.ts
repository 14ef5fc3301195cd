import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { DEFAULTS } from '../config/index.js'
import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import type { Logger } from '../log/index.js'
import type { ChildHandle, ExitReason } from '../supervisor/index.js'
import type { PeerHost, PlayOutcome, PlayRequest } from '../actors/peer/index.js'
import { QueueKeys } from './keys.js'
import type { RedisTarget } from './redis-target.js'
import { COMPLETE, ENQUEUE, RECOVER, RELEASE, TAKE } from './scripts.js'
import { decodeAnswer, decodeReplyEntry, encodeAnswer, encodeReplyEntry, signTask, verifyTask, type QueuedTask, type TaskAnswer } from './task-codec.js'

type Connection = Redis | Cluster

/** The scripts, as ioredis commands (numkeys first). */
interface Scripted {
  circlesEnqueue(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesTake(numkeys: number, ...args: (string | number)[]): Promise<(string | null)[][]>
  circlesRecover(numkeys: number, ...args: (string | number)[]): Promise<(string | null)[][]>
  circlesComplete(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesRelease(numkeys: number, ...args: (string | number)[]): Promise<number>
}

export interface RedisBridgeOptions {
  readonly target: RedisTarget
  /** Key prefix (default `rhailib:`). */
  readonly prefix: string
  /** The cluster secret every node shares: tasks and replies carry a MAC made with it. */
  readonly secret: string
  /** How long a task may wait for its owner beyond its run's wall limit. */
  readonly queueAllowanceMs: number
  readonly log: Logger
  /** The node's peer contexts (late-bound: the peers supervisor may restart them). */
  readonly peers: () => PeerHost
}

/** Cross-node figures for metrics. */
export interface BridgeCounters {
  /** Tasks this node queued for other nodes. */
  sent: number
  /** Tasks this node took from its contexts' queues. */
  received: number
  /** Tasks taken again after their owner died (re-run, or answered from their completion record). */
  redelivered: number
  /** Tasks whose deadline passed before a reply (gateway side) or before they ran (owner side). */
  expired: number
  /** Times the connection to Redis came back. */
  reconnects: number
  /** Tasks or replies refused because their MAC did not verify. */
  refused: number
}

interface Waiter {
  readonly pubkey: string
  readonly resolve: (outcome: PlayOutcome) => void
  readonly reject: (error: CirclesError) => void
  readonly timer: NodeJS.Timeout
}

interface Completion {
  readonly pubkey: string
  readonly taskId: string
  readonly status: 'completed' | 'error'
  readonly answer: string
  readonly deadline: number
  readonly replyTo: string
}

/** One row of circlesTake / circlesRecover: [task_id, status, script, caller, timeout_ms, reply_to, deadline, mac, answer, origin]. */
type TaskRow = (string | null)[]

const LEASE_TTL_MS = 600_000
const ALIVE_TTL_MS = 15_000
const LEASE_CACHE_MS = 1_000
const RETENTION_MS = 60_000
const MAX_TAKE = 256
const BLOCK_SECONDS = 1
const REPLY_BATCH = 512

function connect(target: RedisTarget, blocking: boolean): Connection {
  // Fail fast while Redis is away (cross-node plays answer UNAVAILABLE at once); the blocking
  // reader waits for it instead.
  const common = {
    lazyConnect: false,
    enableOfflineQueue: blocking,
    maxRetriesPerRequest: blocking ? null : 0,
    retryStrategy: (times: number) => Math.min(100 * times, 2_000),
  }
  if (target.type === 'single') {
    return new Redis(target.url, { ...common, enableAutoPipelining: !blocking })
  }
  return new Cluster([...target.nodes], {
    enableAutoPipelining: !blocking,
    enableOfflineQueue: blocking,
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 2_000),
    redisOptions: {
      maxRetriesPerRequest: blocking ? null : 0,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
  })
}

function define(connection: Connection): Connection & Scripted {
  connection.defineCommand('circlesEnqueue', { lua: ENQUEUE })
  connection.defineCommand('circlesTake', { lua: TAKE })
  connection.defineCommand('circlesRecover', { lua: RECOVER })
  connection.defineCommand('circlesComplete', { lua: COMPLETE })
  connection.defineCommand('circlesRelease', { lua: RELEASE })
  return connection as Connection & Scripted
}

/**
 * The Redis bridge: the one part of a node that talks to Redis, and only for work between nodes.
 *
 * Gateway side: a `play` for a context this node does not host is queued to the context's owner
 * (found by its lease): the task hash and the queue entry are written by one script per context
 * per event-loop turn, and the owner is woken through its wake list. Replies come back on this
 * node's reply list, read by the same blocking reader, and are checked (MAC) before use. A task
 * not answered by its deadline (the run's wall limit plus the queueing allowance) is answered
 * TASK_EXPIRED; while Redis is away, cross-node plays fail at once with UNAVAILABLE.
 *
 * Owner side: the node holds a lease for every context it hosts. Woken for a context, it takes
 * its tasks with one script (queue → processing list), runs them through the peer actor (same
 * policy, limits and order as a local run), and completes them with one script per context per
 * turn — result into the task hash (the completion record), reply list written, then off the
 * processing list: a task leaves Redis's processing list only after its reply is written. A node
 * that starts serving a context first re-delivers what the previous owner left in its processing
 * list: tasks with a completion record are answered from it, never run again; the others run
 * again (at-least-once for a run that was cut off), unless their deadline has passed.
 *
 * The bridge is a supervised child of the node (`permanent`); ioredis reconnects by itself.
 */
export class RedisBridge implements ChildHandle {
  readonly nodeId = randomUUID().replace(/-/g, '').slice(0, 16)
  readonly counters: BridgeCounters = { sent: 0, received: 0, redelivered: 0, expired: 0, reconnects: 0, refused: 0 }
  private readonly options: RedisBridgeOptions
  private readonly keys: QueueKeys
  private readonly log: Logger
  private cmd!: Connection & Scripted
  private blocking!: Connection
  private up = false
  private everUp = false
  private stopping = false
  private readonly exitListeners: ((reason: ExitReason) => void)[] = []
  private readyWaiters: (() => void)[] = []
  // Gateway side.
  private readonly waiting = new Map<string, Waiter>()
  private outbox = new Map<string, { owner: string; tasks: QueuedTask[] }>()
  private outboxScheduled = false
  private readonly leases = new Map<string, { owner: string | null; at: number }>()
  private readonly leaseLookups = new Map<string, Promise<string | null>>()
  // Owner side.
  private readonly claimed = new Set<string>()
  private readonly taking = new Map<string, { again: boolean }>()
  private running = 0
  private completions: Completion[] = []
  private completionsScheduled = false
  private retry: Completion[] = []
  private loop: Promise<void> | undefined
  private timers: NodeJS.Timeout[] = []
  private idle: (() => void) | undefined

  constructor(options: RedisBridgeOptions) {
    this.options = options
    this.keys = new QueueKeys(options.prefix)
    this.log = options.log.child({ part: 'redis', node_id: this.nodeId })
  }

  /** Whether Redis answers now (else cross-node work fails fast; local work is untouched). */
  get connected(): boolean {
    return this.up
  }

  /** Tasks this node waits on (gateway side) and runs for others (owner side). */
  get depth(): { readonly waiting: number; readonly running: number } {
    return { waiting: this.waiting.size, running: this.running }
  }

  /** Connect (in the background: a node starts while Redis is away, and catches up when it returns). */
  start(): void {
    this.cmd = define(connect(this.options.target, false))
    this.blocking = connect(this.options.target, true)
    this.cmd.on('ready', () => void this.onReady())
    this.cmd.on('error', (error: Error) => this.log.debug({ err: error.message }, 'redis error'))
    this.blocking.on('error', () => {})
    this.cmd.on('close', () => {
      if (this.up) this.log.warn('redis connection lost: cross-node plays answer UNAVAILABLE until it returns')
      this.up = false
    })
    this.loop = this.readLoop()
    this.timers.push(
      setInterval(() => {
        if (this.up) void this.cmd.set(this.keys.alive(this.nodeId), '1', 'PX', ALIVE_TTL_MS).catch(() => {})
      }, ALIVE_TTL_MS / 3),
      setInterval(() => {
        if (this.up) for (const pubkey of this.claimed) void this.cmd.set(this.keys.lease(pubkey), this.nodeId, 'PX', LEASE_TTL_MS).catch(() => {})
      }, LEASE_TTL_MS / 3),
    )
    for (const timer of this.timers) timer.unref()
  }

  private async onReady(): Promise<void> {
    if (this.everUp) this.counters.reconnects++
    this.everUp = true
    this.up = true
    this.log.info('connected to redis')
    for (const resolve of this.readyWaiters.splice(0)) resolve()
    try {
      await this.cmd.set(this.keys.alive(this.nodeId), '1', 'PX', ALIVE_TTL_MS)
      // Leases may be gone (a Redis that keeps nothing on disk): claim every hosted context again,
      // then serve what its queue holds.
      const peers = this.options.peers()
      for (const pubkey of peers.keys()) this.claimed.add(pubkey)
      await Promise.all([...this.claimed].map((pubkey) => this.cmd.set(this.keys.lease(pubkey), this.nodeId, 'PX', LEASE_TTL_MS)))
      const retry = this.retry.splice(0)
      if (retry.length > 0) this.enqueueCompletions(retry)
      await Promise.all([...this.claimed].map((pubkey) => this.serve(pubkey, true)))
      // A gateway that read the previous owner from its lease cache may still wake that owner
      // for a moment: look at the queues once more after the caches have expired.
      setTimeout(() => {
        if (this.up && !this.stopping) for (const pubkey of this.claimed) void this.take(pubkey)
      }, 2 * LEASE_CACHE_MS).unref()
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'redis start-up duties failed; they run again on the next connection')
    }
  }

  /** Serve a context hosted here: claim its lease, re-deliver what a previous owner left, take its queue. */
  claim(pubkey: string): void {
    this.claimed.add(pubkey)
    if (this.up) {
      void this.cmd
        .set(this.keys.lease(pubkey), this.nodeId, 'PX', LEASE_TTL_MS)
        .then(() => this.serve(pubkey, true))
        .catch(() => {})
    }
  }

  // --- Gateway side ---------------------------------------------------------------------------

  /**
   * Run a script in a context another node owns. Rejects UNKNOWN_CIRCLE when no node serves the
   * context, UNAVAILABLE while Redis is away, TASK_EXPIRED when no reply came by the deadline,
   * and the owner's own refusals (policy, mailbox, …) as a local run would.
   */
  dispatch(pubkey: string, request: PlayRequest): Promise<PlayOutcome> {
    if (!this.up || this.stopping) {
      return Promise.reject(circlesError('UNAVAILABLE', 'Cross-node work is unavailable: the node cannot reach Redis', { reason: 'redis' }))
    }
    const cached = this.leases.get(pubkey)
    if (cached !== undefined && performance.now() - cached.at < LEASE_CACHE_MS) return this.queue(pubkey, cached.owner, request)
    return this.lookupLease(pubkey).then((owner) => this.queue(pubkey, owner, request))
  }

  private lookupLease(pubkey: string): Promise<string | null> {
    let lookup = this.leaseLookups.get(pubkey)
    if (lookup === undefined) {
      lookup = this.cmd.get(this.keys.lease(pubkey)).then(
        (owner) => {
          this.leaseLookups.delete(pubkey)
          this.leases.set(pubkey, { owner, at: performance.now() })
          if (this.leases.size > 100_000) this.leases.delete(this.leases.keys().next().value as string)
          return owner
        },
        () => {
          this.leaseLookups.delete(pubkey)
          throw circlesError('UNAVAILABLE', 'Cross-node work is unavailable: the node cannot reach Redis', { reason: 'redis' })
        },
      )
      this.leaseLookups.set(pubkey, lookup)
    }
    return lookup
  }

  private queue(pubkey: string, owner: string | null, request: PlayRequest): Promise<PlayOutcome> {
    if (owner === null) return Promise.reject(circlesError('UNKNOWN_CIRCLE', `No node serves circle ${pubkey}`))
    const taskId = randomUUID()
    const wallMs = request.timeoutMs ?? DEFAULTS.SCRIPT_TIMEOUT_MS
    const allowance = this.options.queueAllowanceMs
    const task: QueuedTask = {
      taskId,
      context: pubkey,
      caller: request.caller,
      script: request.script,
      timeoutMs: request.timeoutMs,
      replyTo: this.nodeId,
      deadline: Date.now() + wallMs + allowance,
      origin: request.origin ?? '',
    }
    return new Promise<PlayOutcome>((resolve, reject) => {
      const timer = setTimeout(() => void this.expire(taskId), wallMs + allowance)
      this.waiting.set(taskId, { pubkey, resolve, reject, timer })
      let group = this.outbox.get(pubkey)
      if (group === undefined) this.outbox.set(pubkey, (group = { owner, tasks: [] }))
      group.tasks.push(task)
      if (!this.outboxScheduled) {
        this.outboxScheduled = true
        setImmediate(this.flushOutbox)
      }
    })
  }

  /** Queue this turn's tasks: one script per context, one wake per (owner, context). */
  private readonly flushOutbox = (): void => {
    this.outboxScheduled = false
    const groups = this.outbox
    this.outbox = new Map()
    const now = Date.now()
    for (const [pubkey, { owner, tasks }] of groups) {
      const keys = [this.keys.queue(pubkey), ...tasks.map((t) => this.keys.task(pubkey, t.taskId))]
      const args: (string | number)[] = [now, RETENTION_MS]
      for (const t of tasks) {
        args.push(t.taskId, t.script, t.caller, t.context, t.timeoutMs ?? '', t.replyTo, t.deadline, signTask(this.options.secret, t), t.origin)
      }
      this.counters.sent += tasks.length
      this.cmd.circlesEnqueue(keys.length, ...keys, ...args).then(
        () => this.cmd.lpush(this.keys.wake(owner), pubkey).catch(() => {}),
        (error: Error) => {
          this.log.warn({ err: error.message, context: pubkey, tasks: tasks.length }, 'could not queue cross-node tasks')
          for (const t of tasks) this.fail(t.taskId, circlesError('UNAVAILABLE', 'Cross-node work is unavailable: the task could not be queued', { reason: 'redis' }))
        },
      )
    }
  }

  private fail(taskId: string, error: CirclesError): void {
    const waiter = this.waiting.get(taskId)
    if (waiter === undefined) return
    this.waiting.delete(taskId)
    clearTimeout(waiter.timer)
    waiter.reject(error)
  }

  /** The deadline passed: look once for a reply whose wake-up was lost, else answer TASK_EXPIRED. */
  private async expire(taskId: string): Promise<void> {
    const waiter = this.waiting.get(taskId)
    if (waiter === undefined) return
    let text: string | null = null
    if (this.up) text = await this.cmd.lindex(this.keys.reply(waiter.pubkey, taskId), 0).catch(() => null)
    if (text !== null && this.deliver(taskId, text)) return
    this.counters.expired++
    this.fail(taskId, circlesError('TASK_EXPIRED', 'No node answered this task by its deadline; it may or may not have run', { task_id: taskId }))
  }

  /** Hand a reply to its waiter. False when nobody waits or the reply does not verify. */
  private deliver(taskId: string, text: string): boolean {
    const waiter = this.waiting.get(taskId)
    if (waiter === undefined) return false
    const answer = decodeAnswer(this.options.secret, taskId, text)
    if (answer === undefined) {
      this.counters.refused++
      this.log.warn({ task_id: taskId }, 'a reply failed its MAC check and was ignored (is every node given the same cluster secret?)')
      return false
    }
    this.waiting.delete(taskId)
    clearTimeout(waiter.timer)
    if (answer.type === 'run') waiter.resolve({ outcome: answer.outcome, taskId, queuedMs: answer.queuedMs })
    else waiter.reject(circlesError(answer.code, answer.message, answer.details))
    return true
  }

  // --- The blocking reader ------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    const wake = this.keys.wake(this.nodeId)
    const replies = this.keys.replies(this.nodeId)
    let order = [wake, replies]
    while (!this.stopping) {
      if (!this.up) {
        await new Promise<void>((resolve) => this.readyWaiters.push(resolve))
        continue
      }
      let result: [string, string[]] | null
      try {
        result = (await this.blocking.blmpop(BLOCK_SECONDS, 2, order[0]!, order[1]!, 'LEFT', 'COUNT', REPLY_BATCH)) as [string, string[]] | null
      } catch {
        if (this.stopping) return
        await new Promise<void>((resolve) => setTimeout(resolve, 200).unref())
        continue
      }
      // Alternate which list is read first, so that neither starves the other.
      order = [order[1]!, order[0]!]
      if (result === null) continue
      const [key, entries] = result
      if (key === wake) {
        for (const pubkey of new Set(entries)) void this.take(pubkey)
      } else {
        for (const entry of entries) {
          const reply = decodeReplyEntry(entry)
          if (reply !== undefined) this.deliver(reply.taskId, reply.answer)
        }
      }
    }
  }

  // --- Owner side ---------------------------------------------------------------------------

  /** At start and on a new context: re-deliver what a previous owner left, then take the queue. */
  private async serve(pubkey: string, recover: boolean): Promise<void> {
    if (recover) {
      try {
        const rows = await this.cmd.circlesRecover(1, this.keys.processing(pubkey), this.keys.taskPrefix(pubkey))
        for (const row of rows) this.handle(pubkey, row, true)
      } catch (error) {
        this.log.warn({ err: (error as Error).message, context: pubkey }, 'could not read the processing list')
      }
    }
    await this.take(pubkey)
  }

  private async take(pubkey: string): Promise<void> {
    if (!this.options.peers().has(pubkey) || this.stopping) return
    const running = this.taking.get(pubkey)
    if (running !== undefined) {
      running.again = true
      return
    }
    const state = { again: false }
    this.taking.set(pubkey, state)
    try {
      for (;;) {
        state.again = false
        const rows = await this.cmd.circlesTake(2, this.keys.queue(pubkey), this.keys.processing(pubkey), this.keys.taskPrefix(pubkey), MAX_TAKE, Date.now())
        for (const row of rows) this.handle(pubkey, row, false)
        if (rows.length < MAX_TAKE && !state.again) break
      }
    } catch (error) {
      if (this.up) this.log.warn({ err: (error as Error).message, context: pubkey }, 'could not take tasks')
    } finally {
      this.taking.delete(pubkey)
    }
  }

  /** One task taken (or left by a previous owner): run it, or answer it from its record. */
  private handle(pubkey: string, row: TaskRow, redelivered: boolean): void {
    const [taskId, status, script, caller, timeoutText, replyTo, deadlineText, mac, answer, origin] = row
    if (taskId === null || taskId === undefined) return
    const deadline = Number(deadlineText ?? 0)
    if (redelivered) this.counters.redelivered++
    else this.counters.received++
    if (status === null || replyTo === null || replyTo === undefined) {
      // The task's record expired: nobody waits for it any more.
      this.complete({ pubkey, taskId, status: 'error', answer: '', deadline: Date.now(), replyTo: '' })
      return
    }
    if ((status === 'completed' || status === 'error') && typeof answer === 'string' && answer !== '') {
      // Completed before its owner died: answer from the record, never run it again.
      this.complete({ pubkey, taskId, status, answer, deadline, replyTo })
      return
    }
    const task: QueuedTask = {
      taskId,
      context: pubkey,
      caller: caller ?? '',
      script: script ?? '',
      timeoutMs: timeoutText === null || timeoutText === undefined || timeoutText === '' ? undefined : Number(timeoutText),
      replyTo,
      deadline,
      origin: origin ?? '',
    }
    if (!verifyTask(this.options.secret, task, mac ?? '')) {
      this.counters.refused++
      this.log.warn({ task_id: taskId, context: pubkey }, 'a task failed its MAC check and was dropped (is every node given the same cluster secret?)')
      this.complete({ pubkey, taskId, status: 'error', answer: '', deadline: Date.now(), replyTo: '' })
      return
    }
    if (Date.now() > deadline) {
      this.counters.expired++
      this.complete({ pubkey, taskId, status: 'error', answer: '', deadline, replyTo: '' })
      return
    }
    this.running++
    const request: PlayRequest = {
      caller: task.caller,
      script: task.script,
      taskId,
      ...(task.origin === '' ? {} : { origin: task.origin }),
      ...(task.timeoutMs === undefined ? {} : { timeoutMs: task.timeoutMs }),
    }
    let played: Promise<PlayOutcome>
    try {
      played = this.options.peers().dispatch(pubkey, request)
    } catch (error) {
      played = Promise.reject(error)
    }
    played
      .then(
        (o): TaskAnswer => ({ type: 'run', outcome: o.outcome, queuedMs: o.queuedMs }),
        (error: unknown): TaskAnswer => {
          const e = isCirclesError(error) ? error : circlesError('INTERNAL_ERROR')
          return { type: 'refusal', code: e.code, message: e.message, details: { ...e.details } }
        },
      )
      .then((result) => {
        this.running--
        const text = encodeAnswer(this.options.secret, taskId, result)
        const failed = result.type === 'refusal' || result.outcome.code !== null
        this.complete({ pubkey, taskId, status: failed ? 'error' : 'completed', answer: text, deadline, replyTo })
        if (this.running === 0) this.idle?.()
      })
  }

  private complete(completion: Completion): void {
    this.enqueueCompletions([completion])
  }

  private enqueueCompletions(completions: readonly Completion[]): void {
    this.completions.push(...completions)
    if (!this.completionsScheduled) {
      this.completionsScheduled = true
      setImmediate(this.flushCompletions)
    }
  }

  /** Record this turn's results: one script per context, then one push per waiting node. */
  private readonly flushCompletions = (): void => {
    this.completionsScheduled = false
    const all = this.completions
    this.completions = []
    if (!this.up) {
      this.retry.push(...all)
      return
    }
    const byContext = new Map<string, Completion[]>()
    for (const c of all) {
      let list = byContext.get(c.pubkey)
      if (list === undefined) byContext.set(c.pubkey, (list = []))
      list.push(c)
    }
    const now = Date.now()
    for (const [pubkey, list] of byContext) {
      const keys = [this.keys.processing(pubkey)]
      const args: (string | number)[] = [now, RETENTION_MS]
      for (const c of list) {
        keys.push(this.keys.task(pubkey, c.taskId), this.keys.reply(pubkey, c.taskId))
        args.push(c.taskId, c.status, c.answer, c.deadline)
      }
      this.cmd.circlesComplete(keys.length, ...keys, ...args).then(
        () => {
          const byNode = new Map<string, string[]>()
          for (const c of list) {
            if (c.replyTo === '' || c.answer === '') continue
            let entries = byNode.get(c.replyTo)
            if (entries === undefined) byNode.set(c.replyTo, (entries = []))
            entries.push(encodeReplyEntry(pubkey, c.taskId, c.answer))
          }
          for (const [node, entries] of byNode) void this.cmd.lpush(this.keys.replies(node), ...entries).catch(() => {})
        },
        () => {
          // Redis went away: keep the results and write them when it is back.
          this.retry.push(...list)
        },
      )
    }
  }

  // --- Lifecycle ----------------------------------------------------------------------------

  /** ChildHandle: finish the tasks taken, let go of the leases, disconnect. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.running > 0) await new Promise<void>((resolve) => (this.idle = resolve))
    await new Promise((resolve) => setImmediate(resolve))
    if (this.up) {
      await Promise.all([...this.claimed].map((pubkey) => this.cmd.circlesRelease(1, this.keys.lease(pubkey), this.nodeId).catch(() => 0)))
      await this.cmd.del(this.keys.alive(this.nodeId)).catch(() => 0)
    }
    this.shutdown()
    await this.loop
    this.exit({ type: 'normal' })
  }

  kill(): void {
    this.stopping = true
    this.shutdown()
    this.exit({ type: 'error', error: new Error('redis bridge killed') })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exitListeners.push(listener)
  }

  private shutdown(): void {
    for (const timer of this.timers) clearInterval(timer)
    for (const taskId of [...this.waiting.keys()]) {
      this.fail(taskId, circlesError('UNAVAILABLE', 'The node stopped before the reply came', { reason: 'shutdown' }))
    }
    this.cmd.disconnect()
    this.blocking.disconnect()
    for (const resolve of this.readyWaiters.splice(0)) resolve()
  }

  private exit(reason: ExitReason): void {
    for (const listener of this.exitListeners.splice(0)) listener(reason)
  }
}

import { randomUUID } from 'node:crypto'
import { DEFAULTS } from '../config/index.js'
import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import type { Faults } from '../faults/index.js'
import type { Logger } from '../log/index.js'
import { DEFAULT_POLICY, runRefusal } from '../policy/index.js'
import { ExitListeners, type ChildHandle, type ExitReason } from '../supervisor/index.js'
import type { PeerHost, PlayOutcome, PlayRequest } from '../actors/peer/index.js'
import { TurnBatch } from '../turns/index.js'
import { hashSlot } from './hash-slot.js'
import { QueueKeys } from './keys.js'
import { QueuedBytes } from './queued-bytes.js'
import { connect, type Connection, type Scripted } from './redis-connection.js'
import type { RedisTarget } from './redis-target.js'
import { StartedTasks } from './started-tasks.js'
import { calleePlay, type TaskCall } from './remote-calls.js'
import {
  decodeAnswer,
  decodeReplyEntry,
  encodeAnswer,
  encodeTask,
  encodeReplyEntry,
  isContextKey,
  isTaskId,
  leaseValue,
  parseOwnerToken,
  peekTask,
  readTaskRow,
  runHint,
  secretCheckValue,
  signTask,
  type QueuedTask,
  type TaskAnswer,
} from './task-codec.js'

export interface RedisBridgeOptions {
  readonly target: RedisTarget
  /** Key prefix (default `rhailib:`). */
  readonly prefix: string
  /** The cluster secret every node shares: tasks and replies carry a MAC made with it. */
  readonly secret: string
  /** How long a task may wait for its owner beyond its run's wall limit. */
  readonly queueAllowanceMs: number
  /** Bytes of tasks one caller address may have stored in Redis and not answered (default DEFAULTS.QUEUED_BYTES_PER_ADDRESS). */
  readonly queuedBytesPerAddress?: number
  /** Bytes of tasks this node may have stored in Redis and not answered (default DEFAULTS.QUEUED_BYTES_PER_GATEWAY). */
  readonly queuedBytesPerGateway?: number
  readonly log: Logger
  /** The node's peer contexts (late-bound: the peers supervisor may restart them). */
  readonly peers: () => PeerHost
  /**
   * The node cannot serve through this Redis (its cluster secret is not the other nodes'): the
   * bridge has stopped and serves nothing; the node should stop too.
   */
  readonly onFatal?: (error: CirclesError) => void
  /** Faults to inject (tests only): `bridge-crash` makes the bridge's own code fail. */
  readonly faults?: Faults
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
  /** Tasks or replies refused: malformed, or their MAC did not verify (QUEUE_MESSAGE_INVALID). */
  refused: number
  /** Tasks refused because this process had already started them (a copy handed to it again). */
  repeats: number
  /** Entries the scripts skipped in Redis: an id that is not a task id, an entry over the size cap, a key of the wrong type. */
  poisoned: number
}

interface Waiter {
  readonly pubkey: string
  readonly resolve: (outcome: PlayOutcome) => void
  readonly reject: (error: CirclesError) => void
  /** The last lookup, then the deadline. */
  timer: NodeJS.Timeout
  /** The caller's address and the task's bytes, charged to the queued-bytes budgets. */
  readonly origin: string
  readonly bytes: number
}

/** A task on its way to Redis, and its text as stored there. */
interface Outgoing {
  readonly task: QueuedTask
  readonly entry: string
}

interface Completion {
  readonly pubkey: string
  readonly taskId: string
  /** `repeat`: a task this process had started, handed to it again — only taken off the processing list. */
  readonly status: 'completed' | 'error' | 'repeat'
  /** The signed answer; '' when nobody waits for one (an expired or refused task). */
  readonly answer: string
  readonly deadline: number
  /** The gateway node to push the reply to; '' for none. */
  readonly replyTo: string
}

/** A lease outlives its last renewal by this much: a context whose node died for good is unknown after it. */
const LEASE_TTL_MS = 60_000
const ALIVE_TTL_MS = 15_000
/** The secret's check value outlives the last node that refreshed it by this much. */
const CHECK_TTL_MS = 60_000
/**
 * How long a task's keys are kept after its deadline: nothing outlives it. A completion record
 * is deleted sooner, once its gateway has read the answer (see ACK_DELAY_MS).
 */
const KEPT_PAST_DEADLINE_MS = 0
/**
 * The gateway's last lookup of a task's completion record happens this long before the deadline
 * (at most a quarter of the wait): a reply popped from the reply list but lost with the
 * connection, or (on a cluster) never pushed, is read from the record while it still exists.
 */
const LAST_LOOKUP_MS = 1_000
/**
 * Completion records a gateway has read are deleted by its next circlesEnqueue of the same hash
 * slot, or, when none leaves within this many ms, by a DEL of their own.
 */
const ACK_DELAY_MS = 20
/** Most records one circlesEnqueue or one DEL deletes (Lua's unpack has a stack limit). */
const ACK_BATCH = 1_000
/** Most tasks one circlesTake moves at a time. */
const MAX_TAKE = 256
/** How long one BLMPOP blocks before it is issued again (lets a stopping node leave promptly). */
const BLOCK_SECONDS = 1
/** Most entries one BLMPOP returns. */
const READ_BATCH = 1_024
/** Most entries one circlesPush carries (Lua's unpack has a stack limit). */
const PUSH_BATCH = 1_000
/**
 * A node's wake list expires this long after a context key is pushed onto it, and a reply list
 * this long after a push on a cluster, unless read; on one server the scripts make a list that
 * holds tasks or answers live until the latest of their deadlines instead.
 */
const NODE_LIST_TTL_MS = 60_000

/**
 * The Redis bridge: the one part of a node that talks to Redis, and only for work between nodes.
 *
 * Gateway side: a `play` for a context this node does not host is queued for the context's
 * owner. The tasks of one event-loop turn go in one script per hash slot (one per turn on one
 * server) — and, while one is in flight, those of every turn until it returns go together in the
 * next — which reads each context's lease in the same atomic step: with no lease nothing is
 * queued and the play answers UNKNOWN_CIRCLE. On one server the script also hands the tasks to
 * their owner: straight onto its processing list and its wake list (the owner runs them without
 * taking them). On a cluster (the owner's list is in another slot) the tasks go to the context's
 * queue and the bridge wakes the owner, which takes them. Replies come back on this node's
 * reply list, read by the same blocking reader, and are checked (MAC) before use; the completion
 * records read are deleted with the next enqueue script of their slot (or a DEL of their own).
 * A task not answered by its deadline (the run's wall limit plus the queueing allowance) is
 * answered TASK_EXPIRED, after one last lookup of its completion record shortly before; while
 * Redis is away, cross-node plays fail at once with UNAVAILABLE.
 *
 * Owner side: the node holds a lease for every context it hosts, naming its id, the epoch of
 * its connection and a hint of the context's run rule (which the enqueue script uses to refuse,
 * without storing anything, what the owner would refuse; it is written again whenever the
 * policy changes). Tasks handed to it, or taken from a queue (queue → processing list, one
 * script per slot), run through the peer actor (same policy, limits and order as a local run);
 * their results are recorded with one script per slot per turn (one in flight at a time: the
 * results of the turns meanwhile go together in the next) — the task hash becomes the completion
 * record (the answer; the script is dropped), reply pushed to the gateway node (on one server;
 * else one push per gateway node), then off the processing list: a task leaves the processing
 * list only once its record is written. A node that starts serving a
 * context (or reconnects) first re-delivers the context's processing list: tasks with a
 * completion record are answered from it, never run again; the others run again (at-least-once
 * for a run that was cut off), unless their deadline has passed.
 *
 * Redis is a trust boundary (docs/cluster.md): before it serves, the node checks that the
 * cluster secret's check value in Redis is the one its secret makes, and refuses to serve when it
 * is not; every task and reply carries a MAC; a process never runs a task id twice before its
 * deadline (StartedTasks), whatever Redis says about it; and the bytes a gateway stores are
 * bounded per caller address and per node (QueuedBytes).
 *
 * The bridge is a supervised child of the node (`permanent`); ioredis reconnects by itself.
 */
export class RedisBridge implements ChildHandle {
  readonly nodeId = randomUUID().replace(/-/g, '').slice(0, 16)
  readonly counters: BridgeCounters = { sent: 0, received: 0, redelivered: 0, expired: 0, reconnects: 0, refused: 0, repeats: 0, poisoned: 0 }
  private readonly options: RedisBridgeOptions
  private readonly keys: QueueKeys
  /** What this node's secret makes of the cluster's check value. */
  private readonly checkValue: string
  /** The check value was found changed while serving (logged once). */
  private checkChanged = false
  /** One Redis server (not a cluster): scripts may also push to the nodes' lists. */
  private readonly single: boolean
  private readonly log: Logger
  private cmd!: Connection & Scripted
  private blocking!: Connection
  private up = false
  private everUp = false
  /**
   * Counts this node's connections to Redis. Leases name `<node_id>.<epoch>.<hint>`, and tasks are handed
   * to the wake list of the epoch their lease named: after a reconnection the node reads a new
   * list, and what was handed to an earlier epoch is re-delivered from the processing lists
   * instead — so no task reaches this node both ways.
   */
  private epoch = 0
  private stopping = false
  private readonly exits = new ExitListeners()
  private readyWaiters: (() => void)[] = []
  // Gateway side.
  private readonly waiting = new Map<string, Waiter>()
  private outbox = new Map<string, Outgoing[]>()
  private readonly outboxBatch = new TurnBatch(() => this.flushOutbox())
  /** Enqueue scripts in flight: while there are, the tasks dispatched meanwhile wait to go together in the next. */
  private enqueuing = 0
  private wakes = new Map<string, Set<string>>()
  private readonly wakesBatch = new TurnBatch(() => this.flushWakes())
  /** Completion records read here (their keys), by hash slot (0 on one server): deleted with the next enqueue of their slot. */
  private acks = new Map<number, string[]>()
  private ackTimer: NodeJS.Timeout | undefined
  // Owner side.
  private readonly claimed = new Set<string>()
  private toTake = new Set<string>()
  private toRecover = new Set<string>()
  /** Contexts being re-delivered: tasks handed to them meanwhile wait here, to keep queue order. */
  private readonly recovering = new Map<string, unknown[]>()
  private readonly takesBatch = new TurnBatch(() => this.flushTakes())
  /** Tasks taken by this node whose completion Redis has not acknowledged: never handled twice. */
  private readonly active = new Set<string>()
  private running = 0
  private completions: Completion[] = []
  private readonly completionsBatch = new TurnBatch(() => this.flushCompletions())
  /** Complete scripts in flight: while there are, the results of later turns wait to go together in the next. */
  private completing = 0
  private retry: Completion[] = []
  /** Scripts in flight that a stop (and the first "serving") waits for: completions, pushes, takes and recoveries. */
  private readonly writes = new Set<Promise<unknown>>()
  private loop: Promise<void> | undefined
  private timers: NodeJS.Timeout[] = []
  private idle: (() => void) | undefined
  private readonly queued: QueuedBytes
  /** Tasks this process has started: never run twice before their deadline. */
  private readonly started = new StartedTasks(DEFAULTS.CLOCK_SKEW_ALLOWANCE_MS)
  private markServing: () => void = () => {}
  private refuseServing: (error: CirclesError) => void = () => {}
  private readonly servingOnce = new Promise<void>((resolve, reject) => {
    this.markServing = resolve
    this.refuseServing = reject
  })

  constructor(options: RedisBridgeOptions) {
    this.options = options
    this.keys = new QueueKeys(options.prefix)
    this.single = options.target.type === 'single'
    this.log = options.log.child({ part: 'redis', node_id: this.nodeId })
    this.checkValue = secretCheckValue(options.secret)
    this.queued = new QueuedBytes(options.queuedBytesPerAddress ?? DEFAULTS.QUEUED_BYTES_PER_ADDRESS, options.queuedBytesPerGateway ?? DEFAULTS.QUEUED_BYTES_PER_GATEWAY)
    // Nobody may be waiting on whenServing (a node embedded without the command line).
    this.servingOnce.catch(() => {})
  }

  /** Write the lease of a context hosted here: this node, this epoch, and the context's run hint. */
  private writeLease(pubkey: string): Promise<unknown> {
    const hint = runHint(this.options.peers().policyOf(pubkey) ?? DEFAULT_POLICY)
    return this.cmd.set(this.keys.lease(pubkey), leaseValue(this.nodeId, this.epoch, hint), 'PX', LEASE_TTL_MS)
  }

  /** Whether Redis answers now (else cross-node work fails fast; local work is untouched). */
  get connected(): boolean {
    return this.up
  }

  /** Tasks this node waits on (gateway side) and runs for others (owner side). */
  get depth(): { readonly waiting: number; readonly running: number } {
    return { waiting: this.waiting.size, running: this.running }
  }

  /**
   * Resolves once the node has connected and claimed every context it hosts (the first time);
   * rejects with CLUSTER_SECRET_MISMATCH when Redis holds another secret's check value.
   */
  whenServing(): Promise<void> {
    return this.servingOnce
  }

  /** Connect (in the background: a node starts while Redis is away, and catches up when it returns). */
  start(): void {
    this.cmd = connect(this.options.target, 'commands')
    this.blocking = connect(this.options.target, 'blocking')
    this.cmd.on('ready', () => void this.onReady())
    this.cmd.on('error', (error: Error) => this.log.debug({ err: error.message }, 'redis error'))
    this.blocking.on('error', () => {})
    this.cmd.on('close', () => {
      if (this.up) this.log.warn('redis connection lost: cross-node plays answer UNAVAILABLE until it returns')
      this.up = false
    })
    // A failure of the bridge's own code (not of Redis: an outage is ridden out) ends the bridge
    // with that error, and its supervisor decides.
    this.loop = this.readLoop().catch((error: unknown) => this.crash(error as Error))
    // Tests only (src/faults): the seam through which a test makes the bridge's code fail.
    this.exits.add(this.options.faults?.onTrigger('bridge-crash', () => {
      this.crash(new Error('fault injected: bridge-crash'))
      return true
    }) ?? (() => {}))
    this.timers.push(
      setInterval(() => {
        if (!this.up) return
        void this.cmd.set(this.keys.alive(this.nodeId), '1', 'PX', ALIVE_TTL_MS).catch(() => {})
        void this.checkSecret().then((ok) => {
          // Checked at connection; found changed since: whoever wrote it, this node's secret was
          // the cluster's when it connected. Said once; the next connection checks again.
          if (ok || this.checkChanged) return
          this.checkChanged = true
          this.log.error({ code: 'CLUSTER_SECRET_MISMATCH', key: this.keys.secretCheck() }, 'the cluster secret check value in Redis changed while this node served: a node with another secret, or a Redis writer, replaced it')
        }, () => {})
      }, ALIVE_TTL_MS / 3),
      setInterval(() => {
        if (this.up) for (const pubkey of this.claimed) void this.writeLease(pubkey).catch(() => {})
      }, LEASE_TTL_MS / 3),
    )
    for (const timer of this.timers) timer.unref()
  }

  private async onReady(): Promise<void> {
    if (this.stopping) return
    if (this.everUp) this.counters.reconnects++
    this.everUp = true
    this.epoch++
    try {
      // Before anything else, and at every connection: a node whose secret is not the cluster's
      // would claim leases for tasks no other node accepts, and refuse every task it is sent.
      if (!(await this.checkSecret())) return await this.refuseToServe()
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'could not check the cluster secret; checked again on the next connection')
      return
    }
    this.up = true
    this.log.info('connected to redis')
    for (const resolve of this.readyWaiters.splice(0)) resolve()
    try {
      await this.cmd.set(this.keys.alive(this.nodeId), '1', 'PX', ALIVE_TTL_MS)
      // Results recorded while Redis was away go first: a recovery must find them completed.
      const retry = this.retry.splice(0)
      if (retry.length > 0) this.enqueueCompletions(retry)
      // Leases may be gone (a Redis that keeps nothing on disk): claim every hosted context again,
      // then serve what its queue and processing list hold.
      for (const pubkey of this.options.peers().keys()) this.claimed.add(pubkey)
      await Promise.all([...this.claimed].map((pubkey) => this.writeLease(pubkey)))
      for (const pubkey of this.claimed) this.take(pubkey, true)
      // Serving means what Redis held for these contexts has been re-delivered and taken: the
      // takes leave on the next turn, and are tracked with the writes.
      await new Promise((resolve) => setImmediate(resolve))
      await Promise.allSettled([...this.writes])
      this.markServing()
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'redis start-up duties failed; they run again on the next connection')
    }
  }

  /**
   * Whether the cluster's check value in Redis is the one this node's secret makes (it is set
   * when missing, and its expiry refreshed when it is).
   */
  private async checkSecret(): Promise<boolean> {
    return (await this.cmd.circlesCheck(1, this.keys.secretCheck(), this.checkValue, CHECK_TTL_MS)) === this.checkValue
  }

  /** Another secret's check value is in Redis: serve nothing, claim nothing, and say so. */
  private async refuseToServe(): Promise<void> {
    const key = this.keys.secretCheck()
    const error = circlesError(
      'CLUSTER_SECRET_MISMATCH',
      `Redis holds a cluster secret check value (${key}) that this node's secret does not make: every node of a cluster must be given the same secret. This node serves nothing through Redis.`,
      { key },
    )
    this.log.error({ code: error.code, key }, error.message)
    this.stopping = true
    this.refuseServing(error)
    // Leases written on an earlier connection would route tasks to a node that no longer serves.
    await Promise.all([...this.claimed].map((pubkey) => this.cmd.circlesRelease(1, this.keys.lease(pubkey), this.nodeId).catch(() => 0)))
    this.shutdown()
    this.options.onFatal?.(error)
  }

  /** Serve a context hosted here: claim its lease, re-deliver what a previous owner left, take its queue. */
  claim(pubkey: string): void {
    this.claimed.add(pubkey)
    if (!this.up) return
    this.writeLease(pubkey).then(
      () => this.take(pubkey, true),
      () => {}, // Redis went away: onReady claims it again.
    )
  }

  /**
   * A hosted context's policy changed: write its lease again, so that gateways refuse early
   * what the new policy refuses and no longer what it admits. Resolves once Redis has it (at
   * once while Redis is away: the next connection writes every lease).
   */
  async advertise(pubkey: string): Promise<void> {
    if (!this.up || !this.claimed.has(pubkey)) return
    await this.writeLease(pubkey).catch(() => {})
  }

  // --- Gateway side ---------------------------------------------------------------------------

  /**
   * Run a script in a context another node owns. Rejects UNKNOWN_CIRCLE when no node serves the
   * context, UNAVAILABLE while Redis is away, TASK_EXPIRED when no reply came by the deadline,
   * OVERLOADED when the caller's address (or this node) has its fill of bytes queued, the
   * refusals the owner's lease advertises (AUTH_REQUIRED, FORBIDDEN: nothing is stored), and the
   * owner's own refusals (policy, mailbox, …) as a local run would.
   */
  dispatch(pubkey: string, request: PlayRequest, call?: TaskCall): Promise<PlayOutcome> {
    if (!this.up || this.stopping) return Promise.reject(unavailable('the node cannot reach Redis'))
    const taskId = randomUUID()
    let waitMs = (request.timeoutMs ?? DEFAULTS.SCRIPT_TIMEOUT_MS) + this.options.queueAllowanceMs
    // A call (remote-calls.ts) is waited for no longer than its calling run lives.
    if (call !== undefined && request.deadline !== undefined) waitMs = Math.max(1, Math.min(waitMs, Math.floor(request.deadline) - Date.now()))
    const task: QueuedTask = {
      taskId,
      context: pubkey,
      caller: request.caller,
      script: request.script,
      timeoutMs: request.timeoutMs,
      replyTo: this.nodeId,
      deadline: Date.now() + waitMs,
      origin: request.origin ?? '',
      ...(call === undefined ? {} : { call }),
    }
    const entry = encodeTask(task, signTask(this.options.secret, task))
    const bytes = Buffer.byteLength(entry)
    // Only with a script limit raised past what the queue carries (MAX_QUEUE_ENTRY_BYTES).
    if (bytes > DEFAULTS.MAX_QUEUE_ENTRY_BYTES) return Promise.reject(circlesError('SCRIPT_TOO_LARGE', `A script queued for another node takes at most ${DEFAULTS.MAX_QUEUE_ENTRY_BYTES} bytes as stored`))
    const overloaded = this.queued.charge(task.origin, bytes)
    if (overloaded !== undefined) return Promise.reject(overloaded)
    return new Promise<PlayOutcome>((resolve, reject) => {
      const lead = Math.min(LAST_LOOKUP_MS, Math.floor(waitMs / 4))
      const timer = setTimeout(() => void this.lastLookup(taskId, lead), waitMs - lead)
      this.waiting.set(taskId, { pubkey, resolve, reject, timer, origin: task.origin, bytes })
      let tasks = this.outbox.get(pubkey)
      if (tasks === undefined) this.outbox.set(pubkey, (tasks = []))
      tasks.push({ task, entry })
      this.outboxBatch.schedule()
    })
  }

  /**
   * Queue the tasks dispatched since the last enqueue: one script per hash slot (one on one
   * server) that reads each context's lease, queues the tasks its run hint does not refuse if it
   * has an owner, — on one server — wakes the owner, and deletes the completion records this
   * node has read.
   */
  private readonly flushOutbox = (): void => {
    // Batches across turns: one enqueue at a time; what is dispatched meanwhile leaves, in as few
    // scripts as its slots need, as soon as it returns (see afterEnqueue).
    if (this.enqueuing > 0 || this.outbox.size === 0) return
    const outbox = this.outbox
    this.outbox = new Map()
    const now = Date.now()
    for (const group of this.bySlot(outbox)) {
      const keys: string[] = []
      const args: (string | number)[] = [now, KEPT_PAST_DEADLINE_MS, this.single ? this.keys.nodePrefix() : '', NODE_LIST_TTL_MS, this.nodeId]
      for (const [pubkey, tasks] of group) {
        keys.push(this.keys.queue(pubkey), this.keys.processing(pubkey), this.keys.lease(pubkey))
        args.push(pubkey, tasks.length)
        for (const { task, entry } of tasks) {
          keys.push(this.keys.task(pubkey, task.taskId))
          args.push(task.taskId, task.deadline, task.caller, entry)
        }
      }
      // The completion records of this slot read since the last enqueue go with it (deleted last).
      keys.push(...this.takeAcks(this.slotOf(group[0]![0])))
      this.enqueuing++
      this.cmd
        .circlesEnqueue(keys.length, ...keys, ...args)
        .then(
          (results) => group.forEach(([pubkey, tasks], i) => this.enqueued(pubkey, tasks, Array.isArray(results) ? results[i] : undefined)),
          (error: Error) => {
            this.log.warn({ err: error.message, contexts: group.length }, 'could not queue cross-node tasks')
            for (const [, tasks] of group) for (const { task } of tasks) this.fail(task.taskId, unavailable('the task could not be queued'))
          },
        )
        .finally(this.afterEnqueue)
    }
  }

  /** An enqueue returned: the tasks dispatched while it was in flight leave now, together. */
  private readonly afterEnqueue = (): void => {
    if (--this.enqueuing > 0 || this.outbox.size === 0) return
    if (!this.up || this.stopping) {
      // Redis went away meanwhile (or the node stops): they cannot be queued.
      const outbox = this.outbox
      this.outbox = new Map()
      for (const tasks of outbox.values()) for (const { task } of tasks) this.fail(task.taskId, unavailable('the task could not be queued'))
      return
    }
    this.flushOutbox()
  }

  /** What circlesEnqueue did with one context's tasks: {lease, verdicts} (see scripts.ts). */
  private enqueued(pubkey: string, tasks: readonly Outgoing[], result: unknown): void {
    const [owner, verdicts] = Array.isArray(result) ? (result as unknown[]) : []
    if (owner === null) {
      for (const { task } of tasks) this.fail(task.taskId, circlesError('UNKNOWN_CIRCLE', `No node serves circle ${pubkey}`))
      return
    }
    const token = parseOwnerToken(owner)
    if (token === undefined || typeof verdicts !== 'string' || verdicts.length !== tasks.length) {
      this.refuse(circlesError('QUEUE_MESSAGE_INVALID', 'A lease that does not name a node', { reason: 'lease', context: pubkey }))
      for (const { task } of tasks) this.fail(task.taskId, unavailable('the context has an unreadable lease'))
      return
    }
    let queued = 0
    tasks.forEach(({ task }, i) => {
      // Refused by the owner's run hint: nothing was stored.
      if (verdicts[i] !== 'q') return this.fail(task.taskId, runRefusal(task.caller))
      queued++
    })
    this.counters.sent += queued
    if (queued > 0 && !this.single) this.wake(this.keys.wake(token.nodeId, token.epoch), pubkey)
  }

  /** The hash slot of a context's keys (0 on one server: every key is served together). */
  private slotOf(pubkey: string): number {
    return this.single ? 0 : hashSlot(this.keys.queue(pubkey))
  }

  /** The gateway read task `taskId`'s answer: its completion record goes with the next enqueue of its slot (or alone, soon). */
  private ack(pubkey: string, taskId: string): void {
    const slot = this.slotOf(pubkey)
    let keys = this.acks.get(slot)
    if (keys === undefined) this.acks.set(slot, (keys = []))
    keys.push(this.keys.task(pubkey, taskId))
    this.ackTimer ??= setTimeout(this.flushAcks, ACK_DELAY_MS)
  }

  /** Up to ACK_BATCH record keys of `slot` to delete now. */
  private takeAcks(slot: number): string[] {
    const keys = this.acks.get(slot)
    if (keys === undefined) return []
    if (keys.length <= ACK_BATCH) {
      this.acks.delete(slot)
      return keys
    }
    return keys.splice(0, ACK_BATCH)
  }

  /** Records no enqueue took within ACK_DELAY_MS: one DEL per slot (and per ACK_BATCH keys). */
  private readonly flushAcks = (): void => {
    this.ackTimer = undefined
    if (!this.up) return // Left to expire at their deadlines.
    for (const slot of [...this.acks.keys()]) {
      for (let keys = this.takeAcks(slot); keys.length > 0; keys = this.takeAcks(slot)) this.track(this.cmd.del(...keys).catch(() => 0))
    }
  }

  /** Entries by context, split into the groups one script may serve: all of them on one server, one hash slot each on a cluster. */
  private bySlot<T>(byContext: Map<string, T>): [string, T][][] {
    if (this.single) return byContext.size === 0 ? [] : [[...byContext]]
    const groups = new Map<number, [string, T][]>()
    for (const entry of byContext) {
      const slot = this.slotOf(entry[0])
      let group = groups.get(slot)
      if (group === undefined) groups.set(slot, (group = []))
      group.push(entry)
    }
    return [...groups.values()]
  }

  /** Wake an owner for `pubkey` through its wake list (on a cluster): the wakes of one turn go in one push per list. */
  private wake(list: string, pubkey: string): void {
    let contexts = this.wakes.get(list)
    if (contexts === undefined) this.wakes.set(list, (contexts = new Set()))
    contexts.add(pubkey)
    this.wakesBatch.schedule()
  }

  private readonly flushWakes = (): void => {
    const wakes = this.wakes
    this.wakes = new Map()
    for (const [list, contexts] of wakes) this.push(list, [...contexts])
  }

  /** Append entries to a node's list (in chunks), refreshing its expiry. */
  private push(key: string, entries: readonly string[]): void {
    for (let i = 0; i < entries.length; i += PUSH_BATCH) {
      this.track(this.cmd.circlesPush(1, key, NODE_LIST_TTL_MS, ...entries.slice(i, i + PUSH_BATCH)).catch(() => 0))
    }
  }

  /**
   * The waiter of a task, no longer waiting. Its bytes go back to the budgets: answered, its owner
   * dropped the script; unanswered by its deadline, every key of the task expires then.
   */
  private settleWaiter(taskId: string): Waiter | undefined {
    const waiter = this.waiting.get(taskId)
    if (waiter === undefined) return undefined
    this.waiting.delete(taskId)
    clearTimeout(waiter.timer)
    this.queued.release(waiter.origin, waiter.bytes)
    return waiter
  }

  private fail(taskId: string, error: CirclesError): void {
    this.settleWaiter(taskId)?.reject(error)
  }

  /**
   * Shortly before the deadline (`lead` ms): look once at the task's completion record, for an
   * answer whose reply was lost (popped with a connection that dropped; on a cluster, a push that
   * never came) while the record still exists; then wait for the deadline.
   */
  private async lastLookup(taskId: string, lead: number): Promise<void> {
    const waiter = this.waiting.get(taskId)
    if (waiter === undefined) return
    let text: string | null = null
    if (this.up) text = await this.cmd.hget(this.keys.task(waiter.pubkey, taskId), 'answer').catch(() => null)
    if (text !== null && text !== '' && this.deliver(waiter.pubkey, taskId, text)) return
    if (this.waiting.get(taskId) !== waiter) return
    waiter.timer = setTimeout(() => this.expire(taskId), lead)
  }

  /** The deadline passed with no answer: TASK_EXPIRED. */
  private expire(taskId: string): void {
    if (!this.waiting.has(taskId)) return
    this.counters.expired++
    this.fail(taskId, circlesError('TASK_EXPIRED', 'No node answered this task by its deadline; it may or may not have run', { task_id: taskId }))
  }

  /** Check a reply and hand it to its waiter, if one still waits. False when the reply is refused. */
  private deliver(pubkey: string, taskId: string, text: string): boolean {
    let answer: TaskAnswer
    try {
      answer = decodeAnswer(this.options.secret, taskId, withinCap(text, 'reply'))
    } catch (error) {
      this.refuse(error)
      return false
    }
    // Read: its completion record is no longer needed (its owner has dropped the script already).
    this.ack(pubkey, taskId)
    const waiter = this.settleWaiter(taskId)
    if (waiter === undefined) return true
    if (answer.type === 'run') waiter.resolve({ outcome: answer.outcome, taskId, queuedMs: answer.queuedMs })
    else waiter.reject(circlesError(answer.code, answer.message, answer.details))
    return true
  }

  /** A message from Redis that the node will not act on: counted and logged (at most its reason). */
  private refuse(error: unknown): void {
    this.counters.refused++
    const e = isCirclesError(error) ? error : circlesError('QUEUE_MESSAGE_INVALID', (error as Error).message)
    this.log.warn({ code: e.code, ...e.details }, e.message)
  }

  // --- The blocking reader ------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    const replies = this.keys.replies(this.nodeId)
    let wakeFirst = true
    while (!this.stopping) {
      if (!this.up) {
        await new Promise<void>((resolve) => this.readyWaiters.push(resolve))
        continue
      }
      const wake = this.keys.wake(this.nodeId, this.epoch)
      let result: unknown
      try {
        result = await this.blocking.blmpop(BLOCK_SECONDS, 2, wakeFirst ? wake : replies, wakeFirst ? replies : wake, 'LEFT', 'COUNT', READ_BATCH)
      } catch {
        if (this.stopping) return
        await new Promise<void>((resolve) => setTimeout(resolve, 100).unref())
        continue
      }
      // Alternate which list is read first, so that neither starves the other.
      wakeFirst = !wakeFirst
      if (result === null) continue
      const [key, entries] = result as [string, unknown[]]
      if (key === replies) {
        for (const entry of entries) {
          try {
            const reply = decodeReplyEntry(withinCap(entry, 'reply'))
            this.deliver(reply.context, reply.taskId, reply.answer)
          } catch (error) {
            this.refuse(error)
          }
        }
      } else if (key === this.keys.wake(this.nodeId, this.epoch)) {
        for (const entry of entries) this.woken(entry)
      }
      // Else the list of an earlier epoch (a read resent after a reconnection): what it held is
      // re-delivered from the processing lists.
    }
  }

  /** A wake-list entry: a context whose queue to take, or (on one server) a task handed to this node. */
  private woken(entry: unknown): void {
    if (isContextKey(entry)) return this.take(entry, false)
    try {
      // Parsed once (peekTask), and only when within the size cap.
      const { context, taskId, parsed } = peekTask(withinCap(entry, 'wake'))
      const row = [taskId, 'processing', parsed, null, null, null]
      if (this.stopping || !this.options.peers().has(context)) return // Left in the processing list for the context's next owner.
      const held = this.recovering.get(context)
      if (held !== undefined) held.push(row)
      else this.handle(context, row, false)
    } catch (error) {
      this.refuse(error)
    }
  }

  // --- Owner side ---------------------------------------------------------------------------

  /**
   * Take a context's queue (first re-delivering its processing list when `recover`). The takes of
   * one turn go in one script per hash slot; the scripts and recoveries of a slot leave on one
   * connection in the order they were issued, so tasks reach a peer's mailbox in queue order.
   */
  private take(pubkey: string, recover: boolean): void {
    if (this.stopping || !this.options.peers().has(pubkey)) return
    this.toTake.add(pubkey)
    if (recover) {
      this.toRecover.add(pubkey)
      // From now until the re-delivery is read, tasks handed to this context wait behind it.
      if (!this.recovering.has(pubkey)) this.recovering.set(pubkey, [])
    }
    this.takesBatch.schedule()
  }

  private readonly flushTakes = (): void => {
    const recover = this.toRecover
    const take = this.toTake
    this.toRecover = new Set()
    this.toTake = new Set()
    // While Redis is away nothing can be taken; onReady recovers and takes every context again.
    if (!this.up || this.stopping) return
    const failed = (pubkeys: readonly string[]) => (error: Error) => {
      if (this.up) this.log.warn({ err: error.message, contexts: pubkeys.length }, 'could not take tasks')
    }
    for (const pubkey of recover) {
      const epoch = this.epoch
      const done = () => {
        const held = this.recovering.get(pubkey) ?? []
        this.recovering.delete(pubkey)
        for (const row of held) this.handle(pubkey, row, false)
      }
      const recovery = this.cmd.circlesRecover(1, this.keys.processing(pubkey), this.keys.taskPrefix(pubkey), DEFAULTS.MAX_QUEUE_ENTRY_BYTES).then(
        (result) => {
          const [poisoned, ...rows] = Array.isArray(result) ? (result as unknown[]) : []
          this.poisoned(poisoned, pubkey)
          // How many tasks each earlier owner (node and epoch) left behind, for the log.
          const from = new Map<string, { owner: ReturnType<typeof parseOwnerToken>; tasks: number }>()
          for (const row of rows) {
            // A task handed to this very epoch arrives through its wake list: not twice.
            const owner = Array.isArray(row) ? parseOwnerToken(row[6]) : undefined
            if (owner !== undefined && owner.nodeId === this.nodeId && owner.epoch === epoch) continue
            this.handle(pubkey, row, true)
            const key = owner === undefined ? '' : `${owner.nodeId}.${owner.epoch}`
            from.set(key, { owner, tasks: (from.get(key)?.tasks ?? 0) + 1 })
          }
          for (const { owner, tasks } of from.values()) {
            this.log.info(
              { context: pubkey, tasks, from_node: owner?.nodeId ?? null, from_epoch: owner?.epoch ?? null },
              `re-delivering ${tasks} task(s) of context ${pubkey} left by ${owner === undefined ? 'an unknown owner' : `node ${owner.nodeId}, epoch ${owner.epoch}`}`,
            )
          }
          done()
        },
        (error: Error) => {
          failed([pubkey])(error)
          done()
        },
      )
      this.track(recovery)
    }
    for (const group of this.bySlot(new Map([...take].map((pubkey) => [pubkey, pubkey])))) {
      const pubkeys = group.map(([pubkey]) => pubkey)
      const keys = pubkeys.flatMap((pubkey) => [this.keys.queue(pubkey), this.keys.processing(pubkey)])
      const prefixes = pubkeys.map((pubkey) => this.keys.taskPrefix(pubkey))
      const taking = this.cmd.circlesTake(keys.length, ...keys, MAX_TAKE, Date.now(), KEPT_PAST_DEADLINE_MS, DEFAULTS.MAX_QUEUE_ENTRY_BYTES, ...prefixes).then((result) => {
        const [poisoned, ...all] = Array.isArray(result) ? (result as unknown[]) : []
        this.poisoned(poisoned, pubkeys.length === 1 ? pubkeys[0]! : undefined)
        pubkeys.forEach((pubkey, i) => {
          const taken = all[i]
          if (!Array.isArray(taken)) return this.refuse(circlesError('QUEUE_MESSAGE_INVALID', 'A take that did not return rows', { reason: 'take', context: pubkey }))
          const [more, ...rows] = taken as unknown[]
          for (const row of rows) this.handle(pubkey, row, false)
          // A take pops at most MAX_TAKE entries per context: it says when it left some behind.
          if (more === 1) this.take(pubkey, false)
        })
      }, failed(pubkeys))
      this.track(taking)
    }
  }

  /** Entries a script skipped in Redis (it returns how many): counted and logged. */
  private poisoned(count: unknown, context: string | undefined): void {
    if (typeof count !== 'number' || count <= 0) return
    this.counters.poisoned += count
    this.log.warn(
      { code: 'QUEUE_MESSAGE_INVALID', reason: 'poisoned', entries: count, ...(context === undefined ? {} : { context }) },
      'entries in Redis that are not tasks (an id that is not a task id, an entry over the size cap, a key of the wrong type) were skipped',
    )
  }

  /** One task taken (or left by a previous owner): run it, or answer it from its record. */
  private handle(pubkey: string, row: unknown, redelivered: boolean): void {
    const rawId = Array.isArray(row) ? row[0] : undefined
    // A re-delivery after a reconnection meets the tasks this process still has in hand (running,
    // or its completion not yet written): they are not new. Handed over or taken, an id in hand
    // can only be a copy — read on, and refused below.
    if (redelivered && typeof rawId === 'string' && this.active.has(rawId)) return
    if (redelivered) this.counters.redelivered++
    else this.counters.received++
    let record
    try {
      record = readTaskRow(this.options.secret, pubkey, Array.isArray(row) ? row.slice(0, 6) : row)
    } catch (error) {
      this.refuse(error)
      // Off the processing list, unanswered: nothing that failed its check is acted on.
      if (isTaskId(rawId)) this.settle({ pubkey, taskId: rawId, status: 'error', answer: '', deadline: Date.now(), replyTo: '' })
      return
    }
    if (record.type === 'gone') {
      // The task's record expired: nobody waits for it any more.
      this.settle({ pubkey, taskId: record.taskId, status: 'error', answer: '', deadline: Date.now(), replyTo: '' })
      return
    }
    if (record.type === 'done') {
      // Completed before its owner died: answer from the record, never run it again.
      this.settle({ pubkey, taskId: record.taskId, status: record.status, answer: record.answer, deadline: record.deadline, replyTo: record.replyTo })
      return
    }
    const { task } = record
    if (Date.now() > task.deadline) {
      this.counters.expired++
      this.settle({ pubkey, taskId: task.taskId, status: 'error', answer: '', deadline: task.deadline, replyTo: '' })
      return
    }
    if (this.started.has(task.taskId)) {
      // A copy of a task that ran here (its JSON keeps its MAC): whatever its record in Redis
      // says, it does not run again. Only its id leaves the processing list; its record stays.
      this.counters.repeats++
      this.log.warn(
        { code: 'QUEUE_MESSAGE_INVALID', reason: 'repeat', context: pubkey, task_id: task.taskId },
        'a task this node already started was handed to it again: refused (a task runs at most once per owner process before its deadline)',
      )
      this.settle({ pubkey, taskId: task.taskId, status: 'repeat', answer: '', deadline: task.deadline, replyTo: '' })
      return
    }
    this.started.add(task.taskId, task.deadline)
    this.active.add(task.taskId)
    this.running++
    const request: PlayRequest = {
      caller: task.caller,
      script: task.script,
      taskId: task.taskId,
      ...(task.origin === '' ? {} : { origin: task.origin }),
      ...(task.timeoutMs === undefined ? {} : { timeoutMs: task.timeoutMs }),
      ...(task.call === undefined ? {} : calleePlay(task.call, task.deadline)),
    }
    let played: Promise<PlayOutcome>
    try {
      // A call enters through the call router, which checks its chain again (remote-calls.ts).
      played = task.call === undefined ? this.options.peers().dispatch(pubkey, request) : this.options.peers().enterCall(pubkey, request, task.call.runsLeft)
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
      .then((answer) => {
        let result = answer
        this.running--
        let text = encodeAnswer(this.options.secret, task.taskId, result)
        // A context whose output limit was raised past what the queue carries: the gateway gets
        // the error a local caller would, not a TASK_EXPIRED (the gateway refuses larger replies).
        if (text.length * 3 > DEFAULTS.MAX_QUEUE_ENTRY_BYTES && Buffer.byteLength(text) > DEFAULTS.MAX_QUEUE_ENTRY_BYTES) {
          result = { type: 'refusal', code: 'OUTPUT_TOO_LARGE', message: `A cross-node answer takes at most ${DEFAULTS.MAX_QUEUE_ENTRY_BYTES} bytes as stored`, details: {} }
          text = encodeAnswer(this.options.secret, task.taskId, result)
        }
        const failed = result.type === 'refusal' || result.outcome.code !== null
        this.enqueueCompletions([{ pubkey, taskId: task.taskId, status: failed ? 'error' : 'completed', answer: text, deadline: task.deadline, replyTo: task.replyTo }])
        if (this.running === 0) this.idle?.()
      })
  }

  /**
   * Complete a task that was not run here (answered from its record, expired, or refused). A
   * repeat's id may be running here still: what is in hand is not its to mark.
   */
  private settle(completion: Completion): void {
    if (completion.status !== 'repeat') this.active.add(completion.taskId)
    this.enqueueCompletions([completion])
  }

  private enqueueCompletions(completions: readonly Completion[]): void {
    this.completions.push(...completions)
    this.completionsBatch.schedule()
  }

  /**
   * Record the results since the last complete: one script per hash slot (one on one server)
   * writes each completion record, takes the tasks off their processing lists and — on one server
   * — pushes each reply to its gateway node's list. On a cluster the bridge pushes the replies
   * itself, one push per gateway node, in the same write; the push may then overtake the record,
   * which only means a task whose owner dies right then runs again (at-least-once), never that a
   * recorded one does.
   */
  private readonly flushCompletions = (): void => {
    // Batches across turns: one complete at a time; results of later turns leave together as soon
    // as it returns (see afterComplete).
    if (this.completing > 0 || this.completions.length === 0) return
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
    for (const group of this.bySlot(byContext)) {
      const keys: string[] = []
      const args: (string | number)[] = [now, KEPT_PAST_DEADLINE_MS, this.single ? this.keys.nodePrefix() : '', NODE_LIST_TTL_MS]
      const written: Completion[] = []
      for (const [pubkey, list] of group) {
        keys.push(this.keys.processing(pubkey))
        args.push(pubkey, list.length)
        for (const c of list) {
          keys.push(this.keys.task(pubkey, c.taskId))
          args.push(c.taskId, c.status, c.answer, c.deadline, c.replyTo)
          written.push(c)
        }
      }
      this.completing++
      this.track(
        this.cmd.circlesComplete(keys.length, ...keys, ...args).then(
          (poisoned) => {
            this.poisoned(poisoned, undefined)
            for (const c of written) if (c.status !== 'repeat') this.active.delete(c.taskId)
          },
          (error: Error) => {
            if (!this.up) {
              // Redis went away: keep the results and write them when it is back.
              this.retry.push(...written)
              return
            }
            // Left on the processing lists: the next recovery re-delivers them (at-least-once).
            this.log.warn({ err: error.message, tasks: written.length }, 'could not record completed tasks')
            for (const c of written) if (c.status !== 'repeat') this.active.delete(c.taskId)
          },
        ).finally(this.afterComplete),
      )
    }
    if (this.single) return
    const byNode = new Map<string, string[]>()
    for (const c of all) {
      if (c.replyTo === '' || c.answer === '' || c.status === 'repeat') continue
      let entries = byNode.get(c.replyTo)
      if (entries === undefined) byNode.set(c.replyTo, (entries = []))
      entries.push(encodeReplyEntry(c.pubkey, c.taskId, c.answer))
    }
    for (const [node, entries] of byNode) this.push(this.keys.replies(node), entries)
  }

  /** A complete returned: the results recorded while it was in flight leave now, together. */
  private readonly afterComplete = (): void => {
    if (--this.completing === 0 && this.completions.length > 0) this.flushCompletions()
  }

  private track(write: Promise<unknown>): void {
    this.writes.add(write)
    void write.finally(() => this.writes.delete(write))
  }

  // --- Lifecycle ----------------------------------------------------------------------------

  /** ChildHandle: finish the tasks taken, record them, let go of the leases, disconnect. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.running > 0) await new Promise<void>((resolve) => (this.idle = resolve))
    await new Promise((resolve) => setImmediate(resolve))
    // Completion records read here and not yet deleted: deleted now rather than at their deadlines.
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer)
    this.flushAcks()
    // A write that returns may start the next (batches across turns): wait until none is left.
    while (this.writes.size > 0) await Promise.allSettled([...this.writes])
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
    this.exits.add(listener)
  }

  /** The bridge's own code failed: stop serving, and exit with the error. */
  private crash(error: Error): void {
    if (this.stopping) return
    this.stopping = true
    this.log.error({ err: error.message }, 'the redis bridge failed')
    this.shutdown()
    this.exit({ type: 'error', error })
  }

  private shutdown(): void {
    this.up = false
    for (const timer of this.timers) clearInterval(timer)
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    for (const taskId of [...this.waiting.keys()]) {
      this.fail(taskId, circlesError('UNAVAILABLE', 'The node stopped before the reply came', { reason: 'shutdown' }))
    }
    this.cmd.disconnect()
    this.blocking.disconnect()
    for (const resolve of this.readyWaiters.splice(0)) resolve()
  }

  private exit(reason: ExitReason): void {
    this.exits.exit(reason)
  }
}

/** An entry read from Redis, refused unless it is text within the size cap (checked before it is parsed). */
function withinCap(entry: unknown, reason: 'wake' | 'reply'): string {
  if (typeof entry !== 'string') throw circlesError('QUEUE_MESSAGE_INVALID', `A ${reason} entry that is not text`, { reason })
  // Length in UTF-16 units, never more than the bytes the cap is stated in.
  if (entry.length > DEFAULTS.MAX_QUEUE_ENTRY_BYTES) throw circlesError('QUEUE_MESSAGE_INVALID', `A ${reason} entry over the size cap (${DEFAULTS.MAX_QUEUE_ENTRY_BYTES} bytes)`, { reason, length: entry.length })
  return entry
}

function unavailable(why: string): CirclesError {
  return circlesError('UNAVAILABLE', `Cross-node work is unavailable: ${why}`, { reason: 'redis' })
}

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CallRouter, type CallRouterOptions, type CalleeRequest } from '../../calls/index.js'
import { DEFAULTS, positiveIntegerOption } from '../../config/index.js'
import { circlesError } from '../../errors/index.js'
import { parsePublicKey, type PublicKeyHex } from '../../identity/index.js'
import { ContextFeed, noticesOf, type ChangeLogLimits, type Position, type Subscriber } from '../../live/index.js'
import { canSubscribe, parsePolicy, readPolicy, refusal, writePolicy, type Policy } from '../../policy/index.js'
import { playResultOf, type PlayResult, type RunOutcome } from '../../protocol/index.js'
import { DEFAULT_LIMITS, type RunLimits, type SandboxContextRef, type SandboxPool } from '../../sandbox/index.js'
import { listNamespaces, namespacePath, NAMESPACE_DIRS, type StorageQuota } from '../../storage/index.js'
import { Supervisor, type ChildHandle, type SupervisorEvent, type SupervisorTree } from '../../supervisor/index.js'
import { PeerActor, type PeerSettings, type PlayOutcome, type PlayRequest } from './actor.js'

/** Settings a peer can override; the rest come from the host's defaults. */
export interface PeerOverrides {
  readonly limits?: Partial<RunLimits>
  readonly quota?: Partial<StorageQuota>
  readonly mailboxCapacity?: number
  readonly maxRunsInFlight?: number
  readonly passivateAfterMs?: number
}

export interface PeerHostOptions {
  /** Root of every namespace: `DB_PATH/<pubkey>/…`. */
  readonly dbPath: string
  readonly pool: SandboxPool
  readonly defaults?: PeerOverrides
  /** How long a stopping peer actor may take to finish its running scripts. */
  readonly shutdownMs?: number
  /** Events of the peers supervisor (for logs). */
  readonly onSupervisorEvent?: (event: SupervisorEvent) => void
  /** Called when a peer is registered for the first time (the Redis bridge claims its lease). */
  readonly onRegistered?: (pubkey: PublicKeyHex) => void
  /**
   * Called when a registered peer is given a policy again (the Redis bridge writes the hint its
   * lease carries); spawnPeer resolves once it has.
   */
  readonly onPolicyChanged?: (pubkey: PublicKeyHex) => Promise<void> | void
  /** Calls between contexts: limits (defaults in src/config/defaults.ts), the node's rate limits, metrics. */
  readonly calls?: Partial<Pick<CallRouterOptions, 'maxDepth' | 'maxRunsPerChain' | 'admit' | 'settled'>> & {
    /** A call to a context not hosted here: sent to its owner (the Redis bridge), or undefined when the node has no other nodes. */
    readonly remote?: (target: PublicKeyHex, request: CalleeRequest) => Promise<RunOutcome> | undefined
  }
  /** Live updates: each context's change log bounds and its cap on subscriptions (defaults from DEFAULTS). */
  readonly live?: LiveOptions
}

export interface LiveOptions {
  readonly log?: Partial<ChangeLogLimits>
  readonly maxSubscriptionsPerContext?: number
}

/** A subscription a context accepted: where it starts, and how to end it. */
export interface ContextSubscription extends Position {
  /** Remove the subscriber (its socket closed, or it unsubscribed). */
  cancel(): void
}

export interface SpawnPeerOptions extends PeerOverrides {
  /** The peer's public key, any accepted form (normalised). */
  readonly pubkey: string
  /** A policy to store with the peer; without one, the stored policy (or the default) applies. */
  readonly policy?: Policy | unknown
}

interface Entry {
  settings: PeerSettings
  context: SandboxContextRef
  actor: PeerActor | undefined
  /** The context's change log and subscribers: kept while it has an actor or subscribers. */
  feed: ContextFeed | undefined
}

export const DEFAULT_QUOTA: StorageQuota = Object.freeze({
  maxDocumentBytes: DEFAULTS.MAX_DOCUMENT_BYTES,
  maxNamespaceBytes: DEFAULTS.MAX_NAMESPACE_BYTES,
  maxDocuments: DEFAULTS.MAX_DOCUMENTS,
  maxNameBytes: DEFAULTS.MAX_NAME_BYTES,
})

/** A handle on a hosted peer context. */
export interface PeerRef {
  readonly pubkey: PublicKeyHex
  readonly policy: Policy
  readonly limits: RunLimits
  /** Run a script in this context (activating it if it was passivated). */
  play(request: PlayRequest): Promise<PlayResult>
}

/** A peer host as its supervisor holds it ({@link PeerHost.asChild}). */
export interface PeerHostChild extends ChildHandle {
  readonly host: PeerHost
  tree(): SupervisorTree
}

/**
 * The peer contexts one node hosts: a directory of every registered peer, of which only the busy
 * ones have a live actor. Live actors are `temporary` children of the peers supervisor: an idle
 * actor passivates itself (a normal exit); a killed or crashed one answers the tasks it still
 * held with errors. Neither is restarted eagerly — an actor holds nothing that is not on disk,
 * so the next message for the peer builds a new one — and so no context, however often it
 * fails, can use up a restart intensity shared with every other context.
 *
 * @example
 * const peers = new PeerHost({ dbPath: './data', pool })
 * const bob = await peers.spawnPeer({ pubkey: bobKey, policy: { run: 'authenticated', write: 'owner' } })
 * const { output } = await bob.play({ caller: aliceKey, script: 'load_data("profile")' })
 */
export class PeerHost {
  /** The supervisor of the live peer actors (one_for_one, dynamic `temporary` children). */
  readonly supervisor: Supervisor
  private readonly dbPath: string
  private readonly pool: SandboxPool
  private readonly defaults: PeerOverrides
  private readonly shutdownMs: number
  private readonly onRegistered: ((pubkey: PublicKeyHex) => void) | undefined
  private readonly onPolicyChanged: ((pubkey: PublicKeyHex) => Promise<void> | void) | undefined
  private readonly live: { readonly log: ChangeLogLimits; readonly maxSubscriptionsPerContext: number }
  private readonly entries = new Map<PublicKeyHex, Entry>()
  private stopping = false
  /**
   * Actors built, passivated and crashed since start; notifications delivered, and change logs
   * lost under their subscribers (a crashed run, a run past its report bounds) — for metrics.
   */
  readonly counters = { activations: 0, passivations: 0, crashes: 0, notifications: 0, logsLost: 0 }
  /** Routes the calls scripts make to other contexts of this node. */
  readonly router: CallRouter

  constructor(options: PeerHostOptions) {
    this.dbPath = options.dbPath
    this.pool = options.pool
    this.defaults = options.defaults ?? {}
    this.shutdownMs = options.shutdownMs ?? DEFAULTS.DRAIN_TIMEOUT_MS
    this.onRegistered = options.onRegistered
    this.onPolicyChanged = options.onPolicyChanged
    const calls = options.calls ?? {}
    this.router = new CallRouter({
      maxDepth: positiveIntegerOption(calls.maxDepth, DEFAULTS.MAX_CALL_DEPTH, 'calls.maxDepth'),
      maxRunsPerChain: positiveIntegerOption(calls.maxRunsPerChain, DEFAULTS.MAX_RUNS_PER_CALL_CHAIN, 'calls.maxRunsPerChain'),
      maxScriptBytes: this.defaults.limits?.maxScriptBytes ?? DEFAULT_LIMITS.maxScriptBytes,
      // A call enters its callee's context the way a client's play does.
      dispatch: (target, request) => (this.entries.has(target) ? undefined : calls.remote?.(target, request)) ?? this.dispatch(target, request).then((played) => played.outcome),
      ...(calls.admit === undefined ? {} : { admit: calls.admit }),
      ...(calls.settled === undefined ? {} : { settled: calls.settled }),
    })
    const log = { maxEntries: DEFAULTS.CHANGE_LOG_ENTRIES, maxAgeMs: DEFAULTS.CHANGE_LOG_AGE_MS, maxBytes: DEFAULTS.CHANGE_LOG_BYTES, ...options.live?.log }
    for (const [key, value] of Object.entries(log)) positiveIntegerOption(value, 1, `live.log.${key}`)
    this.live = {
      log,
      maxSubscriptionsPerContext: positiveIntegerOption(options.live?.maxSubscriptionsPerContext, DEFAULTS.SUBSCRIPTIONS_PER_CONTEXT, 'live.maxSubscriptionsPerContext'),
    }
    this.supervisor = new Supervisor({
      id: 'peers',
      flags: { strategy: 'one_for_one', intensity: 0, periodMs: 1 },
      dynamic: { restart: 'temporary' },
      ...(options.onSupervisorEvent === undefined ? {} : { onEvent: options.onSupervisorEvent }),
    })
    // A supervisor with no children starts at once; live actors are added as they are needed.
    void this.supervisor.start()
  }

  /** Peers registered, and how many of them have a live actor. */
  get size(): { readonly registered: number; readonly active: number } {
    let active = 0
    for (const entry of this.entries.values()) if (entry.actor !== undefined) active++
    return { registered: this.entries.size, active }
  }

  /**
   * Host a peer: create its namespace, store its policy (when given), and register it. Spawning
   * a peer that is already hosted updates its policy and settings (its live actor, if any,
   * finishes its queue under the old ones).
   */
  async spawnPeer(options: SpawnPeerOptions): Promise<PeerRef> {
    const pubkey = parsePublicKey(options.pubkey)
    const root = namespacePath(this.dbPath, pubkey)
    for (const dir of NAMESPACE_DIRS) await mkdir(join(root, dir), { recursive: true, mode: 0o700 })
    let policy: Policy
    if (options.policy !== undefined) {
      policy = parsePolicy(options.policy)
      await writePolicy(root, policy)
    } else {
      policy = await readPolicy(root)
    }
    const settings = this.settingsFor(pubkey, root, policy, options)
    const facts = { circle: pubkey, root, dbPathLabel: pubkey, limits: settings.limits, quota: settings.quota }
    const existing = this.entries.get(pubkey)
    if (existing !== undefined) {
      const changed = JSON.stringify(existing.settings.policy) !== JSON.stringify(policy)
      existing.settings = settings
      existing.context = this.pool.register(facts, existing.context)
      // A new policy applies to those watching at once.
      existing.feed?.endWhere((subscriber) =>
        canSubscribe(policy, subscriber.caller as PublicKeyHex | '', pubkey) ? undefined : refusal(subscriber.caller as PublicKeyHex | '', 'subscribe'),
      )
      if (changed) await this.onPolicyChanged?.(pubkey)
    } else {
      this.entries.set(pubkey, { settings, context: this.pool.register(facts), actor: undefined, feed: undefined })
      this.onRegistered?.(pubkey)
    }
    return this.ref(pubkey)!
  }

  /** Register every namespace already under the db path (a multi-peer node). */
  async adoptExisting(overrides: PeerOverrides = {}): Promise<number> {
    let adopted = 0
    for (const pubkey of await listNamespaces(this.dbPath)) {
      if (this.entries.has(pubkey)) continue
      await this.spawnPeer({ pubkey, ...overrides })
      adopted++
    }
    return adopted
  }

  has(pubkey: PublicKeyHex): boolean {
    return this.entries.has(pubkey)
  }

  /** The keys of every hosted peer. */
  keys(): IterableIterator<PublicKeyHex> {
    return this.entries.keys()
  }

  /** A handle on a hosted peer, or undefined. */
  ref(pubkey: PublicKeyHex): PeerRef | undefined {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return undefined
    return {
      pubkey,
      policy: entry.settings.policy,
      limits: entry.settings.limits,
      play: (request) => this.play(pubkey, request),
    }
  }

  /** The policy of a hosted peer. */
  policyOf(pubkey: PublicKeyHex): Policy | undefined {
    return this.entries.get(pubkey)?.settings.policy
  }

  /**
   * Run a script in a hosted peer's context and return what a client would read: the
   * {@link PlayResult}, or a thrown Circles error (UNKNOWN_CIRCLE for a peer not hosted here,
   * the policy's refusal, the run's own error with its `data`).
   */
  async play(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayResult> {
    const { outcome, ...receipt } = await this.dispatch(pubkey, request)
    return playResultOf(outcome, receipt)
  }

  /**
   * Run a script and resolve with its raw outcome — the gateway's path, which encodes the answer
   * without decoding it. Rejects (coded errors) only when the run never reached the sandbox.
   */
  dispatch(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayOutcome> {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return Promise.reject(circlesError('UNKNOWN_CIRCLE', `No circle ${pubkey} is served here`))
    if (this.stopping) return Promise.reject(circlesError('SHUTTING_DOWN'))
    return this.activate(entry).play(request)
  }

  /**
   * Run a call another node sent (a task with a call part): through the call router's entry,
   * which checks its chain again, in the hosted context `pubkey`. A refusal is an outcome, as a
   * local call's is.
   */
  async enterCall(pubkey: PublicKeyHex, request: PlayRequest, runsLeft: number): Promise<PlayOutcome> {
    let queuedMs = 0
    const call = {
      target: pubkey,
      script: request.script,
      caller: request.caller as PublicKeyHex,
      chain: request.chain ?? [],
      chainId: request.chainId ?? '',
      deadline: request.deadline ?? 0,
      ...(request.origin === undefined ? {} : { origin: request.origin }),
      ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
    }
    const outcome = await this.router.enter(call, runsLeft, (target, callee) =>
      this.dispatch(target, { ...callee, ...(request.taskId === undefined ? {} : { taskId: request.taskId }) }).then((played) => {
        queuedMs = played.queuedMs
        return played.outcome
      }),
    )
    return { outcome, taskId: request.taskId ?? '', queuedMs }
  }

  /**
   * Subscribe to a hosted context's changes and events, as `subscriber.caller` (checked against
   * the policy's `subscribe` rule). Resumes from `after` when given. Activates the context: a
   * watched context keeps its actor, and with it its change log. Throws coded errors:
   * UNKNOWN_CIRCLE, AUTH_REQUIRED / FORBIDDEN, RESYNC_REQUIRED, TOO_MANY_SUBSCRIPTIONS,
   * SHUTTING_DOWN.
   */
  subscribe(pubkey: PublicKeyHex, subscriber: Subscriber, after?: Position): ContextSubscription {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) throw circlesError('UNKNOWN_CIRCLE', `No circle ${pubkey} is served here`)
    if (this.stopping) throw circlesError('SHUTTING_DOWN')
    const caller = subscriber.caller as PublicKeyHex | ''
    if (!canSubscribe(entry.settings.policy, caller, pubkey)) throw refusal(caller, 'subscribe')
    this.activate(entry)
    const feed = entry.feed!
    const position = feed.subscribe(subscriber, after)
    return {
      ...position,
      cancel: () => {
        feed.unsubscribe(subscriber)
        // Without an actor (it was killed) nothing else keeps the feed.
        if (entry.feed === feed && feed.size === 0 && entry.actor === undefined) entry.feed = undefined
      },
    }
  }

  /**
   * Watch a hosted context for other nodes (src/queue/feed-relay.ts): a subscriber the policy is
   * not checked against (it is the node itself; each gateway checks its own subscribers against
   * the policy the owner sends it). Answers the position, what the log holds since a position,
   * and how to stop. Throws UNKNOWN_CIRCLE, SHUTTING_DOWN.
   */
  watch(pubkey: PublicKeyHex, subscriber: Subscriber): ContextSubscription & { since(after: Position): ReturnType<ContextFeed['since']>; position(): Position } {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) throw circlesError('UNKNOWN_CIRCLE', `No circle ${pubkey} is served here`)
    if (this.stopping) throw circlesError('SHUTTING_DOWN')
    this.activate(entry)
    const feed = entry.feed!
    const position = feed.subscribe(subscriber)
    return {
      ...position,
      since: (after) => feed.since(after),
      position: () => feed.position,
      cancel: () => {
        feed.unsubscribe(subscriber)
        if (entry.feed === feed && feed.size === 0 && entry.actor === undefined) entry.feed = undefined
      },
    }
  }

  /** The change log bounds and per-context subscription cap of this host's contexts. */
  get liveLimits(): { readonly log: ChangeLogLimits; readonly maxSubscriptionsPerContext: number } {
    return this.live
  }

  /** Subscriptions to a context now. */
  subscribersOf(pubkey: PublicKeyHex): number {
    return this.entries.get(pubkey)?.feed?.size ?? 0
  }

  /** Subscriptions to every context now. */
  get subscriptions(): number {
    let n = 0
    for (const entry of this.entries.values()) n += entry.feed?.size ?? 0
    return n
  }

  /** The lifecycle state of a peer's actor ('passivated' when it has none). */
  stateOf(pubkey: PublicKeyHex): string | undefined {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return undefined
    return entry.actor?.state ?? 'passivated'
  }

  /**
   * Kill a peer's actor: its queued tasks are answered WORKER_CRASHED (runs already in the sandbox
   * finish and are answered with their outcome); the next message builds a new actor.
   */
  kill(pubkey: PublicKeyHex): boolean {
    const actor = this.entries.get(pubkey)?.actor
    if (actor === undefined) return false
    actor.kill()
    return true
  }

  /**
   * The peer host as a child of a node: stopping it drains (stopped actors are not passivations),
   * killing it kills every actor, and it exits when its supervisor does — with an error should
   * the supervisor's own code fail.
   */
  asChild(): PeerHostChild {
    return {
      host: this,
      stop: () => this.stop(),
      kill: () => {
        this.stopping = true
        this.supervisor.kill()
      },
      onExit: (listener) => this.supervisor.onExit(listener),
      tree: () => this.supervisor.tree(),
    }
  }

  /** Drain: every live actor finishes its running scripts; queued tasks are answered SHUTTING_DOWN. */
  async stop(): Promise<void> {
    this.stopping = true
    await this.supervisor.stop()
  }

  /** Running and queued tasks across all peers. */
  get load(): number {
    let load = 0
    for (const entry of this.entries.values()) load += entry.actor?.load ?? 0
    return load
  }

  /**
   * A run's effects become the context's notices, in order; a run cut short by its host's death
   * loses the log. Such an outcome is the node's own and carries no effects: a WORKER_CRASHED
   * that does carry them came back from the run's host — a run that let a callee's crash be its
   * answer — and its effects are whole.
   */
  private onOutcome(entry: Entry, outcome: RunOutcome, caller: PublicKeyHex | ''): void {
    const feed = entry.feed
    if (feed === undefined) return
    if ((outcome.code === 'WORKER_CRASHED' && outcome.effects === undefined) || outcome.effects?.lost === true) {
      this.counters.logsLost++
      feed.restart()
      return
    }
    if (outcome.effects !== undefined) feed.publish(noticesOf(outcome.effects, caller))
  }

  private activate(entry: Entry): PeerActor {
    if (entry.actor !== undefined) return entry.actor
    entry.feed ??= new ContextFeed({
      log: this.live.log,
      maxSubscribers: this.live.maxSubscriptionsPerContext,
      onDelivered: (count) => (this.counters.notifications += count),
    })
    const actor = new PeerActor(entry.settings, this.pool, entry.context, this.router, {
      onOutcome: (outcome, caller) => this.onOutcome(entry, outcome, caller),
      watched: () => (entry.feed?.size ?? 0) > 0,
    })
    const started = this.supervisor.startChildSync({
      id: entry.settings.pubkey,
      restart: 'temporary',
      shutdown: this.shutdownMs,
      start: () => actor,
    })
    if (!started.ok) {
      actor.kill()
      throw circlesError('SHUTTING_DOWN', 'The peer supervisor is not running')
    }
    this.counters.activations++
    entry.actor = actor
    actor.onExit((reason) => {
      if (entry.actor === actor) entry.actor = undefined
      // Passivated (only ever unwatched) or gone: the log goes with it unless someone watches.
      if (entry.actor === undefined && entry.feed?.size === 0) entry.feed = undefined
      if (reason.type === 'error') this.counters.crashes++
      else if (!this.stopping) this.counters.passivations++
    })
    return actor
  }

  private settingsFor(pubkey: PublicKeyHex, root: string, policy: Policy, overrides: PeerOverrides): PeerSettings {
    const d = this.defaults
    const positive = positiveIntegerOption
    const limits = { ...DEFAULT_LIMITS, ...d.limits, ...overrides.limits }
    for (const [key, value] of Object.entries(limits)) positive(value, 1, `limits.${key}`)
    const quota = { ...DEFAULT_QUOTA, ...d.quota, ...overrides.quota }
    for (const [key, value] of Object.entries(quota)) positive(value, 1, `quota.${key}`)
    return {
      pubkey,
      root,
      policy,
      limits,
      quota,
      mailboxCapacity: positive(overrides.mailboxCapacity ?? d.mailboxCapacity, DEFAULTS.MAILBOX_CAPACITY, 'mailboxCapacity'),
      maxRunsInFlight: positive(overrides.maxRunsInFlight ?? d.maxRunsInFlight, DEFAULTS.MAX_RUNS_IN_FLIGHT_PER_CONTEXT, 'maxRunsInFlight'),
      passivateAfterMs: positive(overrides.passivateAfterMs ?? d.passivateAfterMs, DEFAULTS.PASSIVATE_AFTER_MS, 'passivateAfterMs'),
    }
  }
}

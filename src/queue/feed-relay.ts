import { randomBytes } from 'node:crypto'
import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import type { PublicKeyHex } from '../identity/index.js'
import type { Logger } from '../log/index.js'
import { ContextFeed, logNotice, matches, notificationText, type ChangeLogLimits, type LoggedNotice, type Position, type Subscriber } from '../live/index.js'
import { canSubscribe, refusal, type Policy } from '../policy/index.js'
import type { ContextSubscription, PeerHost } from '../actors/peer/index.js'
import { decodeFeedMessage, encodeFeedMessage, type FeedMessage, type FeedNotice } from './feed-codec.js'
import { QueueKeys } from './keys.js'
import { connect, type Connection } from './redis-connection.js'
import type { RedisTarget } from './redis-target.js'
import { parseOwnerToken } from './task-codec.js'

/** How often a gateway says again that it watches a context (and the owner answers its state). */
const REFRESH_MS = 5_000
/** An owner stops publishing a context this long after the last watch of every gateway. */
const INTEREST_TTL_MS = 15_000
/** How long a gateway waits for the owner's answer to a subscribe. */
const ANSWER_TIMEOUT_MS = 5_000
/** At most this many bytes of notices are replayed in one state; past it the gateway is told to resync. */
const MAX_REPLAY_BYTES = 1 << 20

export interface FeedRelayOptions {
  readonly target: RedisTarget
  readonly prefix: string
  readonly secret: string
  /** This node's id (the Redis bridge's). */
  readonly nodeId: string
  readonly log: Logger
  readonly peers: () => PeerHost
  /** The change log bounds and subscription cap of a gateway's copy of a context (the owner's own). */
  readonly live: { readonly log: ChangeLogLimits; readonly maxSubscriptionsPerContext: number }
  /** Called for each message refused (QUEUE_MESSAGE_INVALID). */
  readonly onRefused?: () => void
}

/** A gateway's copy of a context another node hosts: the owner's log as far as it came, and the local subscribers. */
interface Mirror {
  readonly context: PublicKeyHex
  readonly feed: ContextFeed
  /** The owner's state reached it: the feed's epoch and seq are the owner's, the policy its. */
  synced: boolean
  policy: Policy | undefined
  /** A request for what it missed is out (its id): notices are not applied meanwhile. */
  repairing: string | undefined
  /** Subscribes waiting on the owner: the mirror is kept for them. */
  users: number
  /** The owner's state asked for by subscribes from no position, while it is on its way. */
  asking: Promise<Extract<FeedMessage, { k: 's' }>> | undefined
  /** Resolves once its channel is subscribed. */
  readonly channel: Promise<void>
}

interface Pending {
  readonly resolve: (state: Extract<FeedMessage, { k: 's' }>) => void
  readonly reject: (error: CirclesError) => void
  readonly timer: NodeJS.Timeout
}

/** An owner's relay of one context: a subscriber of its feed that publishes to the context's channel. */
interface Relay {
  readonly context: PublicKeyHex
  handle: ReturnType<PeerHost['watch']>
  /** The epoch of the log the handle follows. */
  epoch: string
  /** Gateways watching, and when their watch lapses (ms, the process clock). */
  readonly watchers: Map<string, number>
  pending: FeedNotice[]
  scheduled: boolean
}

/**
 * Live updates across nodes (docs/cluster.md, "Live updates across nodes").
 *
 * Gateway side: a `subscribe` for a context another node hosts asks its owner over the watch
 * channel, and is answered with the owner's state (epoch, seq, policy, and what a resuming
 * subscriber missed). The gateway keeps one copy of the context's log (a {@link ContextFeed}
 * numbered as the owner's) for all its subscribers, fed from the context's channel; a gap in
 * the seqs (a Redis blip) is asked for again; another epoch (the log was lost, a standby took
 * over) ends its subscribers with RESYNC_REQUIRED; a policy the owner sends ends those it refuses.
 *
 * Owner side: a context is published only while some gateway watches it — a watch lapses after
 * {@link INTEREST_TTL_MS} unless renewed, and ends at once when the gateway's last subscriber
 * goes. Notices of one event-loop turn go in one message; everything carries the cluster MAC.
 */
export class FeedRelay {
  private readonly options: FeedRelayOptions
  private readonly keys: QueueKeys
  private readonly watchChannel: string
  private cmd!: Connection
  private sub!: Connection
  private up = false
  private everUp = false
  private firstUp: (() => void)[] = []
  private stopped = false
  private readonly mirrors = new Map<string, Mirror>()
  private readonly pending = new Map<string, Pending>()
  private readonly relays = new Map<string, Relay>()
  private timer: NodeJS.Timeout | undefined
  /**
   * For metrics: messages published and received; notifications delivered to this gateway's
   * subscribers (replays included); notices handed to the relays (owner side: they are counted
   * by the feeds as deliveries, though no socket received them).
   */
  readonly counters = { published: 0, received: 0, notifications: 0, relayedNotices: 0 }

  constructor(options: FeedRelayOptions) {
    this.options = options
    this.keys = new QueueKeys(options.prefix)
    this.watchChannel = `${options.prefix}feeds:watch`
  }

  private channelOf(context: string): string {
    return `${this.options.prefix}feed:{${context}}`
  }

  start(): void {
    this.cmd = connect(this.options.target, 'commands')
    this.sub = connect(this.options.target, 'blocking')
    this.cmd.on('error', () => {})
    this.sub.on('error', () => {})
    this.sub.on('close', () => (this.up = false))
    this.sub.on('ready', () => void this.onReady())
    this.sub.on('message', (channel: string, text: string) => this.onMessage(channel, text))
    this.timer = setInterval(() => this.tick(), REFRESH_MS)
    this.timer.unref()
  }

  private async onReady(): Promise<void> {
    if (this.stopped) return
    try {
      await this.sub.subscribe(this.watchChannel, ...[...this.mirrors.keys()].map((c) => this.channelOf(c)))
    } catch {
      return // the connection went again: its next ready does this
    }
    this.up = true
    this.everUp = true
    for (const resolve of this.firstUp.splice(0)) resolve()
    // A new owner (a standby taking over, a restart) learns of the gateways watching its
    // contexts; a gateway back from a blip asks for what it missed.
    this.publish(this.watchChannel, { k: 'o', g: this.options.nodeId }).catch(() => {
      // The connection went again: its next ready says it.
    })
    this.rewatch()
  }

  /** Send a watch for every context this gateway copies, from where its copy is. */
  private rewatch(): void {
    for (const mirror of this.mirrors.values()) {
      if (!mirror.synced) continue
      const id = requestId()
      mirror.repairing = id
      const { epoch, seq } = mirror.feed.position
      this.publish(this.watchChannel, { k: 'w', c: mirror.context, g: this.options.nodeId, r: id, a: [epoch, seq] }).catch(() => {
        // Redis went again: the next connection, or the next renewal (tick), asks again.
      })
    }
  }

  private publish(channel: string, message: FeedMessage): Promise<void> {
    if (!this.up) return Promise.reject(unavailable())
    this.counters.published++
    return this.cmd.publish(channel, encodeFeedMessage(this.options.secret, message)).then(
      () => {},
      () => Promise.reject(unavailable()),
    )
  }

  private onMessage(channel: string, text: string): void {
    let message: FeedMessage
    try {
      message = decodeFeedMessage(this.options.secret, text)
    } catch (error) {
      this.options.onRefused?.()
      this.options.log.warn({ code: isCirclesError(error) ? error.code : 'QUEUE_MESSAGE_INVALID', channel, why: (error as CirclesError).details?.['why'] }, 'a live-update message was refused')
      return
    }
    this.counters.received++
    if (channel === this.watchChannel) {
      if (message.k === 'w') this.onWatch(message)
      else if (message.k === 'u') this.onUnwatch(message)
      else if (message.k === 'o') {
        if (message.g !== this.options.nodeId) this.rewatch()
      } else {
        this.options.onRefused?.()
        this.options.log.warn({ code: 'QUEUE_MESSAGE_INVALID', channel }, 'a live-update message on the wrong channel was refused')
      }
      return
    }
    if ((message.k !== 'n' && message.k !== 's') || channel !== this.channelOf(message.c)) {
      this.options.onRefused?.()
      this.options.log.warn({ code: 'QUEUE_MESSAGE_INVALID', channel }, 'a live-update message on the wrong channel was refused')
      return
    }
    const mirror = this.mirrors.get(message.c)
    if (mirror === undefined) return
    if (message.k === 'n') this.onNotices(mirror, message)
    else this.onState(mirror, message)
  }

  // --- Gateway side ---------------------------------------------------------------------------

  /**
   * Subscribe to a context another node hosts. Rejects UNKNOWN_CIRCLE when no node serves it,
   * UNAVAILABLE while Redis is away or when its owner does not answer, the policy's refusal,
   * RESYNC_REQUIRED and TOO_MANY_SUBSCRIPTIONS as on the owner.
   */
  async subscribe(pubkey: PublicKeyHex, subscriber: Subscriber, after?: Position): Promise<ContextSubscription> {
    // A node starting waits for its first connection (as long as it would for an answer);
    // once it has served, a Redis that is away answers UNAVAILABLE at once.
    if (!this.everUp && !this.stopped) await this.firstConnection()
    if (!this.up || this.stopped) throw unavailable()
    let mirror = this.mirrors.get(pubkey)
    if (mirror === undefined) {
      let lease: string | null
      try {
        lease = await this.cmd.get(this.keys.lease(pubkey))
      } catch {
        throw unavailable()
      }
      if (parseOwnerToken(lease) === undefined) throw circlesError('UNKNOWN_CIRCLE', `No node serves the circle ${pubkey}`)
      mirror = this.mirrors.get(pubkey) ?? this.mirror(pubkey)
    }
    mirror.users++
    try {
      await mirror.channel
      let replay: readonly FeedNotice[] | null = null
      const local = mirror.synced && mirror.repairing === undefined && (after === undefined || mirror.feed.since(after) !== undefined)
      if (!local) {
        // Subscribes from no position share one question: a thousand at once ask the owner once.
        const asking = after === undefined ? (mirror.asking ??= this.request(mirror, undefined).finally(() => (mirror.asking = undefined))) : this.request(mirror, after)
        replay = (await asking).x
      }
      if (!canSubscribe(mirror.policy!, subscriber.caller as PublicKeyHex | '', pubkey)) throw refusal(subscriber.caller as PublicKeyHex | '', 'subscribe')
      return this.attach(mirror, subscriber, after, replay)
    } finally {
      mirror.users--
      this.dropIfUnused(mirror)
    }
  }

  private firstConnection(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ANSWER_TIMEOUT_MS)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.firstUp.push(done)
    })
  }

  private mirror(context: PublicKeyHex): Mirror {
    const channel = this.sub.subscribe(this.channelOf(context)).then(
      () => {},
      () => Promise.reject(unavailable()),
    )
    channel.catch(() => {})
    const mirror: Mirror = {
      context,
      feed: new ContextFeed({
        log: this.options.live.log,
        maxSubscribers: this.options.live.maxSubscriptionsPerContext,
        onDelivered: (count) => (this.counters.notifications += count),
      }),
      synced: false,
      policy: undefined,
      repairing: undefined,
      users: 0,
      asking: undefined,
      channel,
    }
    this.mirrors.set(context, mirror)
    return mirror
  }

  /** Ask the owner for its state (and what came after `after`). */
  private request(mirror: Mirror, after: Position | undefined): Promise<Extract<FeedMessage, { k: 's' }>> {
    const id = requestId()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(circlesError('UNAVAILABLE', 'The node that hosts this context did not answer the subscribe in time', { reason: 'owner' }))
      }, ANSWER_TIMEOUT_MS)
      this.pending.set(id, { resolve, reject, timer })
      this.publish(this.watchChannel, { k: 'w', c: mirror.context, g: this.options.nodeId, r: id, a: after === undefined ? null : [after.epoch, after.seq] }).catch((error: CirclesError) => {
        clearTimeout(timer)
        this.pending.delete(id)
        reject(error)
      })
    })
  }

  /** Add a subscriber to a synced copy, giving it what it missed since `after` from the copy (or the owner's replay). */
  private attach(mirror: Mirror, subscriber: Subscriber, after: Position | undefined, replay: readonly FeedNotice[] | null): ContextSubscription {
    const feed = mirror.feed
    const position = feed.position
    const resync = () => circlesError('RESYNC_REQUIRED', undefined, { epoch: position.epoch, seq: position.seq })
    let accepted: Position
    if (after === undefined || feed.since(after) !== undefined) {
      accepted = feed.subscribe(subscriber, after)
    } else {
      // The copy does not reach back to `after`: the owner's replay does, up to the copy's own.
      if (after.epoch !== position.epoch || replay === null) throw resync()
      const early = replay.filter(([seq]) => seq > after.seq && seq <= position.seq)
      const covered = early.length > 0 ? early.at(-1)![0] : after.seq
      if (early.length > 0 && early[0]![0] !== after.seq + 1) throw resync()
      const rest = covered >= position.seq ? [] : feed.since({ epoch: position.epoch, seq: covered })
      if (rest === undefined) throw resync()
      accepted = feed.subscribe(subscriber)
      const quoted = JSON.stringify(subscriber.id)
      for (const [seq, notice] of early) {
        if (!matches(subscriber.filter, notice)) continue
        subscriber.deliver(notificationText(quoted, logNotice(notice, { epoch: position.epoch, seq }, 0)))
        this.counters.notifications++
      }
      for (const logged of rest) {
        if (!matches(subscriber.filter, logged.notice)) continue
        subscriber.deliver(notificationText(quoted, logged))
        this.counters.notifications++
      }
    }
    return {
      ...accepted,
      cancel: () => {
        feed.unsubscribe(subscriber)
        this.dropIfUnused(mirror)
      },
    }
  }

  private onNotices(mirror: Mirror, message: Extract<FeedMessage, { k: 'n' }>): void {
    if (!mirror.synced || mirror.repairing !== undefined) return
    const position = mirror.feed.position
    if (message.e !== position.epoch) return this.repair(mirror)
    const fresh = message.l.filter(([seq]) => seq > position.seq)
    if (fresh.length === 0) return
    if (fresh[0]![0] !== position.seq + 1) return this.repair(mirror)
    mirror.feed.publish(fresh.map(([, notice]) => notice))
  }

  /** Notices were missed (a gap in the seqs): ask the owner for them; nothing is applied meanwhile. */
  private repair(mirror: Mirror): void {
    const id = requestId()
    mirror.repairing = id
    const { epoch, seq } = mirror.feed.position
    this.publish(this.watchChannel, { k: 'w', c: mirror.context, g: this.options.nodeId, r: id, a: [epoch, seq] }).catch(() => {
      // Redis is away: the next connection asks again (rewatch).
    })
  }

  private onState(mirror: Mirror, state: Extract<FeedMessage, { k: 's' }>): void {
    const feed = mirror.feed
    const position = feed.position
    const repair = mirror.repairing
    if (!mirror.synced || state.e !== position.epoch) {
      // Another log (the first state, or the owner's log was lost or taken over): start from it.
      // Subscribers of the earlier one end with RESYNC_REQUIRED.
      const replay = state.x ?? []
      const start = replay.length > 0 ? replay[0]![0] - 1 : state.q
      feed.restart({ epoch: state.e, seq: start })
      if (replay.length > 0) feed.publish(replay.map(([, notice]) => notice))
      mirror.synced = true
      mirror.repairing = undefined
    } else if (repair === undefined || state.r === repair) {
      mirror.repairing = undefined
      if (state.q > position.seq) {
        const fill = (state.x ?? []).filter(([seq]) => seq > position.seq)
        if (fill.length > 0 && fill[0]![0] === position.seq + 1 && fill.at(-1)![0] === state.q) feed.publish(fill.map(([, notice]) => notice))
        // The owner is past the copy and this state does not carry the difference: ask for it.
        else if (repair === undefined) this.repair(mirror)
        // Asked, and the owner's log no longer holds it: the subscribers read again from its position.
        else feed.restart({ epoch: state.e, seq: state.q })
      }
    }
    mirror.policy = state.p
    feed.endWhere((subscriber) =>
      canSubscribe(state.p, subscriber.caller as PublicKeyHex | '', mirror.context) ? undefined : refusal(subscriber.caller as PublicKeyHex | '', 'subscribe'),
    )
    if (state.r !== null) {
      const waiting = this.pending.get(state.r)
      if (waiting !== undefined) {
        this.pending.delete(state.r)
        clearTimeout(waiting.timer)
        waiting.resolve(state)
      }
    }
    this.dropIfUnused(mirror)
  }

  /** A copy nobody uses is let go: the owner is told at once, the channel unsubscribed. */
  private dropIfUnused(mirror: Mirror): void {
    if (mirror.users > 0 || mirror.feed.size > 0 || this.mirrors.get(mirror.context) !== mirror) return
    this.mirrors.delete(mirror.context)
    if (!this.up) return
    this.publish(this.watchChannel, { k: 'u', c: mirror.context, g: this.options.nodeId }).catch(() => {})
    void this.sub.unsubscribe(this.channelOf(mirror.context)).catch(() => {})
  }

  // --- Owner side -----------------------------------------------------------------------------

  private onWatch(message: Extract<FeedMessage, { k: 'w' }>): void {
    const context = message.c as PublicKeyHex
    const peers = this.options.peers()
    if (peers === undefined || !peers.has(context)) return
    const relay = this.relays.get(context) ?? this.startRelay(context)
    if (relay === undefined) return
    relay.watchers.set(message.g, performance.now() + INTEREST_TTL_MS)
    this.sendState(relay, message.r, message.a === null ? null : { epoch: message.a[0], seq: message.a[1] })
  }

  private onUnwatch(message: Extract<FeedMessage, { k: 'u' }>): void {
    const relay = this.relays.get(message.c)
    if (relay === undefined) return
    relay.watchers.delete(message.g)
    if (relay.watchers.size === 0) this.stopRelay(relay)
  }

  private startRelay(context: PublicKeyHex): Relay | undefined {
    // Its handle is set below, before anything reads it: the subscriber's callbacks need the relay.
    const relay: Relay = { context, handle: undefined as unknown as Relay['handle'], epoch: '', watchers: new Map(), pending: [], scheduled: false }
    const subscriber: Subscriber = {
      id: 'relay',
      caller: context,
      filter: {},
      deliver: () => {},
      relay: (logged: LoggedNotice) => {
        this.counters.relayedNotices++
        relay.pending.push([logged.seq, logged.notice])
        if (relay.scheduled) return
        relay.scheduled = true
        setImmediate(() => this.flush(relay))
      },
      // The log was lost under it (a crashed run): follow the new one, and say so.
      ended: () => {
        this.flush(relay)
        if (this.relays.get(context) !== relay) return
        try {
          relay.handle = this.options.peers().watch(context, subscriber)
          relay.epoch = relay.handle.epoch
          this.sendState(relay, null, null)
        } catch {
          this.relays.delete(context)
        }
      },
    }
    try {
      relay.handle = this.options.peers().watch(context, subscriber)
    } catch (error) {
      this.options.log.warn({ context, err: (error as Error).message }, 'could not relay a context to other nodes')
      return undefined
    }
    relay.epoch = relay.handle.epoch
    this.relays.set(context, relay)
    return relay
  }

  private stopRelay(relay: Relay): void {
    this.flush(relay)
    relay.handle.cancel()
    this.relays.delete(relay.context)
  }

  private flush(relay: Relay): void {
    relay.scheduled = false
    if (relay.pending.length === 0) return
    const l = relay.pending
    relay.pending = []
    this.publish(this.channelOf(relay.context), { k: 'n', c: relay.context, e: relay.epoch, l }).catch(() => {
      // Redis is away: the gateways ask for what they missed when it returns.
    })
  }

  /** Publish the context's state: its position and policy, and, for a watch from `after`, what came since. */
  private sendState(relay: Relay, r: string | null, after: Position | null): void {
    this.flush(relay)
    const policy = this.options.peers().policyOf(relay.context)
    if (policy === undefined) return
    const { epoch, seq } = relay.handle.position()
    let x: FeedNotice[] | null = null
    let g = false
    if (after !== null) {
      const since = relay.handle.since(after)
      let bytes = 0
      if (since !== undefined) {
        for (const logged of since) bytes += logged.bytes
      }
      if (since === undefined || bytes > MAX_REPLAY_BYTES) g = true
      else x = since.map((logged) => [logged.seq, logged.notice])
    }
    this.publish(this.channelOf(relay.context), { k: 's', c: relay.context, e: epoch, q: seq, p: policy, r, g, x }).catch(() => {})
  }

  /** A hosted context's policy changed: the gateways watching it are told (they end what it refuses). */
  policyChanged(context: PublicKeyHex): void {
    const relay = this.relays.get(context)
    if (relay !== undefined) this.sendState(relay, null, null)
  }

  private tick(): void {
    if (!this.up) return
    // Gateway: say again what is watched (the owner answers its state: a gap shows).
    for (const mirror of this.mirrors.values()) {
      if (!mirror.synced) continue
      // A repair whose answer was lost is asked again.
      if (mirror.repairing !== undefined) this.repair(mirror)
      else this.publish(this.watchChannel, { k: 'w', c: mirror.context, g: this.options.nodeId, r: null, a: null }).catch(() => {})
    }
    // Owner: let go of what nobody watches any more.
    const now = performance.now()
    for (const relay of [...this.relays.values()]) {
      for (const [node, until] of relay.watchers) if (until <= now) relay.watchers.delete(node)
      if (relay.watchers.size === 0) this.stopRelay(relay)
    }
  }

  /** Contexts this node publishes now (owner side): each is one subscriber of its context's feed. */
  get relayed(): number {
    return this.relays.size
  }

  /** Subscriptions this gateway's sockets hold to contexts other nodes host. */
  get subscriptions(): number {
    let n = 0
    for (const mirror of this.mirrors.values()) n += mirror.feed.size
    return n
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.up = false
    if (this.timer !== undefined) clearInterval(this.timer)
    for (const resolve of this.firstUp.splice(0)) resolve()
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer)
      waiting.reject(unavailable())
      this.pending.delete(id)
    }
    for (const relay of [...this.relays.values()]) {
      relay.handle.cancel()
      this.relays.delete(relay.context)
    }
    // The owners stop publishing what this node watched now rather than when its watches lapse.
    const unwatched =
      this.cmd === undefined
        ? []
        : [...this.mirrors.keys()].map((c) => this.cmd.publish(this.watchChannel, encodeFeedMessage(this.options.secret, { k: 'u', c, g: this.options.nodeId })).catch(() => 0))
    this.mirrors.clear()
    const disconnect = () => {
      clearTimeout(timer)
      this.cmd?.disconnect()
      this.sub?.disconnect()
    }
    // A Redis that does not answer does not hold the node: its watches lapse by themselves.
    const timer = setTimeout(disconnect, 1_000)
    void Promise.allSettled(unwatched).then(disconnect)
  }
}

function requestId(): string {
  return randomBytes(8).toString('hex')
}

function unavailable(): CirclesError {
  return circlesError('UNAVAILABLE', 'Cross-node work is unavailable: Redis cannot be reached', { reason: 'redis' })
}

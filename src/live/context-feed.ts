import { circlesError, type CirclesError } from '../errors/index.js'
import { ChangeLog, type ChangeLogLimits } from './change-log.js'
import { endedText, notificationText, type LoggedNotice, type Notice, type Position } from './notices.js'

/** What a subscription asks for: changes under `prefix`, events whose topic starts with one of `topics`. */
export interface SubscriptionFilter {
  readonly prefix?: string
  readonly topics?: readonly string[]
}

/** One subscription as a feed sees it: where its notifications go. */
export interface Subscriber {
  /** The subscription's id, as its notifications name it. */
  readonly id: string
  /** Who subscribed ('' anonymous): the policy is checked against it again when it changes. */
  readonly caller: string
  readonly filter: SubscriptionFilter
  /** Send one notification (JSON text). Must not throw: a socket that cannot take it is the connection's concern. */
  deliver(text: string): void
  /** The feed ended the subscription (after delivering `subscription_ended`). */
  ended(): void
  /**
   * Take the notices themselves instead of their notification text (an owner node's relay to
   * other nodes, src/queue/feed-relay.ts): when present, notices go here, not to `deliver`.
   */
  relay?(logged: LoggedNotice): void
}

export interface ContextFeedOptions {
  readonly log: ChangeLogLimits
  readonly maxSubscribers: number
  /** The change log's clock (ms). */
  readonly now?: () => number
  /** Notifications delivered (replays and fan-out), for metrics. */
  readonly onDelivered?: (count: number) => void
}

/**
 * Subscribers visited per turn of the event loop by a fan-out: a context with thousands of
 * subscribers hands the event loop back between slices, so that the writer's next request (and
 * everyone else's) is not queued behind the whole fan-out.
 */
const FAN_OUT_SLICE = 256

interface Entry {
  readonly quotedId: string
  /** Notices up to this seq reached the subscriber with its answer (or were before it): skipped by the fan-out. */
  readonly from: number
}

/** Whether a notice is one a subscription asked for (see docs/protocol.md: neither member = everything). */
export function matches(filter: SubscriptionFilter, notice: Notice): boolean {
  const { prefix, topics } = filter
  if (prefix === undefined && topics === undefined) return true
  if (notice.type === 'changed') return prefix !== undefined && notice.name.startsWith(prefix)
  return topics !== undefined && topics.some((topic) => notice.topic.startsWith(topic))
}

/**
 * The live side of one context: its change log and the subscriptions watching it. Notices are
 * numbered and logged as soon as a run's outcome arrives, in run order; they are fanned out to
 * the subscribers from the next turn of the event loop on, in slices, so that the writer's own
 * answer never waits on the fan-out. A subscriber resuming from a position gets exactly what it missed, or
 * RESYNC_REQUIRED when the log cannot tell (another epoch, entries dropped).
 *
 * @example
 * const feed = new ContextFeed({ log: { maxEntries: 1000, maxAgeMs: 300_000, maxBytes: 4 << 20 }, maxSubscribers: 10_000 })
 * const { epoch, seq } = feed.subscribe(subscriber)
 * feed.publish([{ type: 'event', topic: 'typing', value: 'true', caller }])
 */
export class ContextFeed {
  private log: ChangeLog
  private readonly options: ContextFeedOptions
  private readonly subscribers = new Map<Subscriber, Entry>()
  /** Notices logged and not fanned out yet, oldest first. */
  private unsent: LoggedNotice[] = []
  /** The subscribers the first unsent notice goes to (as they were when its fan-out began), and how far it got. */
  private targets: [Subscriber, Entry][] | undefined
  private cursor = 0
  private scheduled = false

  constructor(options: ContextFeedOptions) {
    this.options = options
    this.log = new ChangeLog(options.log, options.now)
  }

  get size(): number {
    return this.subscribers.size
  }

  /** The last notice's position. */
  get position(): Position {
    return this.log.position
  }

  /**
   * Add a subscriber and answer its position. With `after`, what it missed since is delivered to
   * it at once, in order (the caller holds it back until its answer is out); RESYNC_REQUIRED
   * (with the current position) when that cannot be told. TOO_MANY_SUBSCRIPTIONS past the cap.
   */
  subscribe(subscriber: Subscriber, after?: Position): Position {
    if (this.subscribers.size >= this.options.maxSubscribers) {
      throw circlesError('TOO_MANY_SUBSCRIPTIONS', `This context has ${this.options.maxSubscribers} subscriptions already`, {
        limit: 'context',
        max: this.options.maxSubscribers,
      })
    }
    const quotedId = JSON.stringify(subscriber.id)
    if (after !== undefined) {
      const missed = this.log.since(after.epoch, after.seq)
      if (missed === undefined) throw this.resync()
      let delivered = 0
      for (const logged of missed) {
        if (!matches(subscriber.filter, logged.notice)) continue
        if (subscriber.relay !== undefined) subscriber.relay(logged)
        else subscriber.deliver(notificationText(quotedId, logged))
        delivered++
      }
      this.options.onDelivered?.(delivered)
    }
    this.subscribers.set(subscriber, { quotedId, from: this.log.position.seq })
    return this.log.position
  }

  /** What came after `seq` of `epoch`, oldest first; undefined when the log cannot tell (see ChangeLog.since). */
  since(after: Position): readonly LoggedNotice[] | undefined {
    return this.log.since(after.epoch, after.seq)
  }

  unsubscribe(subscriber: Subscriber): boolean {
    return this.subscribers.delete(subscriber)
  }

  /** Log notices (numbered in order) and fan them out on the next turn. */
  publish(notices: readonly Notice[]): void {
    if (notices.length === 0) return
    for (const notice of notices) {
      const logged = this.log.append(notice)
      if (this.subscribers.size > 0) this.unsent.push(logged)
    }
    if (this.unsent.length > 0 && !this.scheduled) {
      this.scheduled = true
      setImmediate(this.fanOut)
    }
  }

  private readonly fanOut = (): void => {
    this.scheduled = false
    let budget = FAN_OUT_SLICE
    let delivered = 0
    while (this.unsent.length > 0 && budget > 0) {
      const logged = this.unsent[0]!
      const targets = (this.targets ??= [...this.subscribers])
      for (; this.cursor < targets.length && budget > 0; budget--) {
        const [subscriber, entry] = targets[this.cursor++]!
        // Gone since (unsubscribed, ended) or subscribed after this notice: not for it.
        if (logged.seq <= entry.from || this.subscribers.get(subscriber) !== entry || !matches(subscriber.filter, logged.notice)) continue
        if (subscriber.relay !== undefined) subscriber.relay(logged)
        else subscriber.deliver(notificationText(entry.quotedId, logged))
        delivered++
      }
      if (this.cursor < targets.length) break
      this.unsent.shift()
      this.targets = undefined
      this.cursor = 0
    }
    this.options.onDelivered?.(delivered)
    if (this.unsent.length > 0) {
      this.scheduled = true
      setImmediate(this.fanOut)
    }
  }

  /**
   * The log was lost (a run crashed in the context, or reported more than it may): a new epoch
   * begins, and every subscription ends with RESYNC_REQUIRED and the new position. `at`: the
   * position the new log starts from (a gateway's copy following its owner's log), by default a
   * new random epoch from seq 0.
   */
  restart(at?: Position): void {
    this.log = new ChangeLog(this.options.log, this.options.now, at)
    this.unsent = []
    this.targets = undefined
    this.cursor = 0
    const resync = this.resync()
    this.endWhere(() => resync)
  }

  /**
   * End the subscriptions for which `why` gives an error, each with a `subscription_ended`
   * carrying its code (and the position to start again from, for RESYNC_REQUIRED).
   */
  endWhere(why: (subscriber: Subscriber) => CirclesError | undefined): void {
    for (const [subscriber, entry] of [...this.subscribers]) {
      const error = why(subscriber)
      if (error === undefined) continue
      this.subscribers.delete(subscriber)
      const position = error.code === 'RESYNC_REQUIRED' ? this.log.position : undefined
      subscriber.deliver(endedText(entry.quotedId, error.code, error.message, position))
      subscriber.ended()
    }
  }

  private resync(): CirclesError {
    const { epoch, seq } = this.log.position
    return circlesError('RESYNC_REQUIRED', undefined, { epoch, seq })
  }
}

import type { Subscriber, SubscriptionFilter } from '../../live/index.js'

/** What a subscription needs from the connection that holds it. */
export interface SubscriptionSink {
  /** Send a notification after what was sent before it, charged to the send budgets like an answer. */
  notify(text: string): void
  /** Bytes held back by a subscription whose answer is not out yet changed by `delta` (UTF-8 bytes): charged like what is sent. */
  hold(delta: number): void
  /** The context ended the subscription (policy change, lost log). */
  ended(subscription: SocketSubscription): void
}

/**
 * One subscription of a socket. Its notifications go out only after the answer that names it: a
 * `subscribe` in a batch is answered with the batch, and what the context sends meanwhile — what
 * a resuming subscriber missed, first — is held until then, charged to the connection's send
 * budgets like what waits in its outbox.
 */
export class SocketSubscription implements Subscriber {
  readonly id: string
  readonly caller: string
  readonly filter: SubscriptionFilter
  /** Detaches it from its context (set once the context accepted it). */
  cancel: () => void = () => {}
  private sink: SubscriptionSink
  private held: string[] | undefined = []
  private heldBytes = 0

  constructor(id: string, caller: string, filter: SubscriptionFilter, sink: SubscriptionSink) {
    this.id = id
    this.caller = caller
    this.filter = filter
    this.sink = sink
  }

  deliver(text: string): void {
    if (this.held === undefined) return this.sink.notify(text)
    const bytes = Buffer.byteLength(text)
    this.held.push(text)
    this.heldBytes += bytes
    this.sink.hold(bytes)
  }

  ended(): void {
    this.sink.ended(this)
  }

  /** Its answer is out: send what was held, then notifications as they come. */
  activate(): void {
    const held = this.held
    if (held === undefined) return
    this.held = undefined
    this.sink.hold(-this.heldBytes)
    this.heldBytes = 0
    for (const text of held) this.sink.notify(text)
  }

  /** Unsubscribed or the socket closed: nothing more goes out. */
  discard(): void {
    this.cancel()
    if (this.held !== undefined) this.sink.hold(-this.heldBytes)
    this.held = undefined
    this.heldBytes = 0
    this.sink = DISCARDED
  }
}

const DISCARDED: SubscriptionSink = { notify: () => {}, hold: () => {}, ended: () => {} }

import type { WebSocket } from 'ws'
import type { SendAccount } from '../../limits/index.js'

export interface OutboxEvents {
  /** The socket took bytes: the client reads (activity, for the idle timer). */
  readonly onFlushed: () => void
  /** Messages now wait in the node (true) because the socket does not take them, or no longer do (false). */
  readonly onBackedUp: (backedUp: boolean) => void
}

/**
 * Everything a connection sends goes through its outbox, in order: answers now, notifications
 * later. Each message is charged to the node's send budget (the connection's account) when it
 * is handed over and credited once the socket has written it to the kernel. The WebSocket layer
 * is given at most `highWater` bytes not yet written (plus one message); the rest waits here, so
 * that cutting a client that does not read frees it at once, and a close frame is queued behind
 * at most that much.
 */
export class Outbox {
  private readonly queue: string[] = []
  /** UTF-8 bytes of each queued message. */
  private readonly sizes: number[] = []
  private head = 0
  private queuedBytes = 0
  /** Bytes handed to the WebSocket layer and not written yet. */
  private inSocket = 0
  private shut = false
  /** A close to send once what waits has gone out. */
  private closing: { readonly code: number; readonly reason: string } | undefined

  constructor(
    private readonly ws: WebSocket,
    private readonly account: SendAccount,
    private readonly highWater: number,
    private readonly events: OutboxEvents,
  ) {}

  /** Whether a message pushed now would be sent (false once closing or cut). */
  get accepting(): boolean {
    return !this.shut
  }

  /** Bytes waiting: here and in the WebSocket layer. */
  get bytes(): number {
    return this.queuedBytes + this.inSocket
  }

  /** Send `text` after what was sent before it (dropped once the outbox is shut). */
  push(text: string): void {
    if (this.shut) return
    const bytes = Buffer.byteLength(text)
    if (this.head === this.queue.length && this.inSocket < this.highWater) {
      this.account.charge(bytes)
      // Charging may have cut this very socket (over a budget): then nothing goes out.
      if (!this.shut) this.write(text, bytes)
      else this.account.credit(bytes)
      return
    }
    const wasEmpty = this.head === this.queue.length
    this.queue.push(text)
    this.sizes.push(bytes)
    this.queuedBytes += bytes
    this.account.charge(bytes)
    if (wasEmpty && !this.shut) this.events.onBackedUp(true)
  }

  /**
   * Close the socket with `code` and `reason` once what waits has gone out, or — `drop` — now,
   * dropping what waits (a client that does not read would never let it through).
   */
  close(code: number, reason: string, drop = false): void {
    if (this.shut) return
    if (drop) this.drop()
    this.closing = { code, reason }
    this.shut = true
    if (this.head === this.queue.length) this.sendClose()
  }

  /** Drop what waits here (it counts no more); the outbox takes nothing after this. */
  drop(): void {
    this.shut = true
    const dropped = this.queuedBytes
    const wasBackedUp = this.head < this.queue.length
    this.queue.length = 0
    this.sizes.length = 0
    this.head = 0
    this.queuedBytes = 0
    this.account.credit(dropped)
    if (wasBackedUp) this.events.onBackedUp(false)
  }

  private write(text: string, bytes: number): void {
    this.inSocket += bytes
    this.ws.send(text, (error) => {
      this.inSocket -= bytes
      this.account.credit(bytes)
      if (error === undefined || error === null) this.events.onFlushed()
      this.pump()
    })
  }

  private pump(): void {
    if (this.head === this.queue.length) return
    while (this.head < this.queue.length && this.inSocket < this.highWater) {
      const text = this.queue[this.head]!
      const bytes = this.sizes[this.head]!
      this.queue[this.head++] = ''
      this.queuedBytes -= bytes
      this.write(text, bytes)
    }
    if (this.head < this.queue.length) {
      // Long-backed-up queues drop the slots already sent now and then.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head)
        this.sizes.splice(0, this.head)
        this.head = 0
      }
      return
    }
    this.queue.length = 0
    this.sizes.length = 0
    this.head = 0
    this.events.onBackedUp(false)
    if (this.closing !== undefined) this.sendClose()
  }

  private sendClose(): void {
    const { code, reason } = this.closing!
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason)
  }
}

import { randomBytes } from 'node:crypto'
import { logNotice, type LoggedNotice, type Notice, type Position } from './notices.js'

/** How much of its recent notices a context keeps for subscribers that resume. */
export interface ChangeLogLimits {
  readonly maxEntries: number
  readonly maxAgeMs: number
  /** Bytes of encoded notifications kept, at most. */
  readonly maxBytes: number
}

/**
 * One epoch of a context's notices: numbered from 1, the most recent kept in memory within
 * {@link ChangeLogLimits} (oldest dropped first) so that a subscriber that was away can be given
 * exactly what it missed. A log lost (passivation, a crashed run, a node restart) is replaced by a
 * new one with a new random epoch: a position from another epoch can never be resumed, so nothing
 * is skipped silently.
 *
 * @example
 * const log = new ChangeLog({ maxEntries: 1000, maxAgeMs: 300_000, maxBytes: 4 << 20 })
 * log.append({ type: 'changed', name: 'posts/1', op: 'delete' }) // seq 1
 * log.since(log.epoch, 0)                                        // [that notice]
 * log.since('another epoch', 0)                                  // undefined: read again
 */
export class ChangeLog {
  readonly epoch: string
  private last: number
  private entries: LoggedNotice[] = []
  private head = 0
  private bytes = 0
  private readonly limits: ChangeLogLimits
  private readonly now: () => number

  /**
   * `start`: continue another node's log from that position (a gateway's copy of a context an
   * owner node hosts, see src/queue/feed-relay.ts); by default a new random epoch from seq 0.
   */
  constructor(limits: ChangeLogLimits, now: () => number = () => performance.now(), start?: Position) {
    this.limits = limits
    this.now = now
    this.epoch = start?.epoch ?? randomBytes(8).toString('hex')
    this.last = start?.seq ?? 0
  }

  /** The last notice's position (seq 0: none yet). */
  get position(): Position {
    return { epoch: this.epoch, seq: this.last }
  }

  /** Entries kept now. */
  get size(): number {
    return this.entries.length - this.head
  }

  append(notice: Notice): LoggedNotice {
    const at = this.now()
    const logged = logNotice(notice, { epoch: this.epoch, seq: ++this.last }, at)
    this.entries.push(logged)
    this.bytes += logged.bytes
    while (this.size > this.limits.maxEntries || this.bytes > this.limits.maxBytes) this.dropOldest()
    this.dropExpired(at)
    return logged
  }

  /**
   * What came after `seq` of `epoch`, oldest first; undefined when that cannot be told exactly:
   * another epoch, a position this log never reached, or entries already dropped.
   */
  since(epoch: string, seq: number): readonly LoggedNotice[] | undefined {
    if (epoch !== this.epoch || seq > this.last) return undefined
    this.dropExpired(this.now())
    if (seq === this.last) return []
    const oldest = this.entries[this.head]
    if (oldest === undefined || oldest.seq > seq + 1) return undefined
    return this.entries.slice(this.head + (seq + 1 - oldest.seq))
  }

  private dropExpired(now: number): void {
    while (this.size > 0 && now - this.entries[this.head]!.at > this.limits.maxAgeMs) this.dropOldest()
  }

  private dropOldest(): void {
    this.bytes -= this.entries[this.head]!.bytes
    this.entries[this.head++] = undefined as unknown as LoggedNotice
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }
}

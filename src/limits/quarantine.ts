/**
 * Circles and remote addresses whose scripts crashed sandbox hosts. Each crash is a strike; a
 * key with strikes is refused for a back-off that doubles with each strike (from `baseMs` up to
 * `maxMs`). Strikes are forgotten after `forgetMs` without a crash. Bounded like the buckets.
 */
export class Quarantine {
  private readonly entries = new Map<string, { strikes: number; until: number; last: number }>()

  constructor(
    private readonly baseMs = 1_000,
    private readonly maxMs = 300_000,
    private readonly forgetMs = 600_000,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Record a crash caused by `key`; returns the back-off it now serves. */
  strike(key: string): number {
    const now = this.now()
    let entry = this.entries.get(key)
    if (entry !== undefined && now - entry.last > this.forgetMs) entry = undefined
    const strikes = (entry?.strikes ?? 0) + 1
    const backoff = Math.min(this.maxMs, this.baseMs * 2 ** (strikes - 1))
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(key, { strikes, until: now + backoff, last: now })
    return backoff
  }

  /** Nothing was ever struck (or everything was forgotten): the hot path skips the lookups. */
  get empty(): boolean {
    return this.entries.size === 0
  }

  /** Milliseconds `key` is still refused for (0: not quarantined). */
  remaining(key: string): number {
    const entry = this.entries.get(key)
    if (entry === undefined) return 0
    const left = entry.until - this.now()
    if (left > 0) return Math.ceil(left)
    if (this.now() - entry.last > this.forgetMs) this.entries.delete(key)
    return 0
  }

  /** Keys refused right now. */
  get active(): number {
    const now = this.now()
    let n = 0
    for (const entry of this.entries.values()) if (entry.until > now) n++
    return n
  }
}

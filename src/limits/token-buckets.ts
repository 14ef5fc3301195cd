/**
 * Token buckets by key (a remote address, a public key): each key may spend `capacity` tokens at
 * once, refilled at `perSecond`. Memory is bounded: a bucket that has refilled completely is the
 * same as no bucket and is dropped by the next sweep, and past `maxKeys` the oldest bucket goes.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private lastSweep: number

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastSweep = now()
  }

  /**
   * Take `cost` tokens for `key`. Returns 0 when they were taken, or how many milliseconds until
   * they would be there (nothing is taken then).
   */
  take(key: string, cost = 1): number {
    const bucket = this.refilled(key)
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost
      return 0
    }
    return this.msUntil(cost - bucket.tokens)
  }

  /**
   * Spend `cost` tokens for `key` whether or not it has them: a cost already incurred (bytes
   * received). The balance may go below zero; returns the milliseconds until it is back to zero
   * (0: it is not in debt).
   */
  charge(key: string, cost: number): number {
    const bucket = this.refilled(key)
    bucket.tokens -= cost
    return bucket.tokens >= 0 ? 0 : this.msUntil(-bucket.tokens)
  }

  /** Forget `key` (its owner is gone: a closed socket). */
  delete(key: string): void {
    this.buckets.delete(key)
  }

  /** Milliseconds until `key` could take `cost` tokens (0: now), without taking them. */
  wait(key: string, cost = 1): number {
    const bucket = this.buckets.get(key)
    if (bucket === undefined) return 0
    const tokens = Math.min(this.capacity, bucket.tokens + ((this.now() - bucket.at) / 1000) * this.perSecond)
    return tokens >= cost ? 0 : this.msUntil(cost - tokens)
  }

  get size(): number {
    return this.buckets.size
  }

  /** The bucket of `key`, brought up to date (a new key starts full). */
  private refilled(key: string): { tokens: number; at: number } {
    const now = this.now()
    if (now - this.lastSweep > 60_000) this.sweep(now)
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = { tokens: this.capacity, at: now }
      this.buckets.set(key, bucket)
    } else {
      bucket.tokens = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond)
      bucket.at = now
    }
    return bucket
  }

  private msUntil(missing: number): number {
    return Math.ceil((missing / this.perSecond) * 1000)
  }

  private sweep(now: number): void {
    this.lastSweep = now
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.capacity) this.buckets.delete(key)
    }
  }
}

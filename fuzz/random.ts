/**
 * A small seeded generator (mulberry32) for the fuzzers: the same seed gives the same frames and
 * scripts, so a failure can be replayed from the seed it prints.
 */
export class Random {
  private state: number

  constructor(readonly seed: number) {
    this.state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }
}

/** The seed to use: `$FUZZ_SEED` when set, else a fresh one. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['FUZZ_SEED']
  if (text !== undefined && text !== '') {
    const n = Number(text)
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error('FUZZ_SEED must be an integer from 0 to 4294967295')
    return n
  }
  return Math.floor(Math.random() * 0x100000000)
}

import { DEFAULTS } from '../config/index.js'

export interface QuarantineOptions {
  /** The first back-off; each further crash doubles it. */
  readonly baseMs?: number
  readonly maxMs?: number
  /** Strikes are forgotten after this long without a crash; crashes of a circle count together within it. */
  readonly windowMs?: number
  /** Origins whose crashes within the window quarantine the whole circle. */
  readonly circleOrigins?: number
  /** Keys remembered at most (the oldest go first). */
  readonly maxKeys?: number
  readonly now?: () => number
}

/** Who is refused: the origin that crashed hosts in a circle, or the whole circle. */
export type QuarantineScope = 'origin' | 'circle'

/**
 * Back-offs by key: each strike doubles the key's back-off (from `baseMs` up to `maxMs`); strikes
 * are forgotten `windowMs` after the last one. Bounded like the token buckets.
 */
class Backoffs {
  private readonly entries = new Map<string, { strikes: number; until: number; last: number }>()

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
  ) {}

  strike(key: string): number {
    const now = this.now()
    let entry = this.entries.get(key)
    if (entry !== undefined && now - entry.last > this.windowMs) entry = undefined
    const strikes = (entry?.strikes ?? 0) + 1
    const backoff = Math.min(this.maxMs, this.baseMs * 2 ** (strikes - 1))
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(key, { strikes, until: now + backoff, last: now })
    return backoff
  }

  get empty(): boolean {
    return this.entries.size === 0
  }

  remaining(key: string): number {
    const entry = this.entries.get(key)
    if (entry === undefined) return 0
    const now = this.now()
    const left = entry.until - now
    if (left > 0) return Math.ceil(left)
    if (now - entry.last > this.windowMs) this.entries.delete(key)
    return 0
  }

  get active(): number {
    const now = this.now()
    let n = 0
    for (const entry of this.entries.values()) if (entry.until > now) n++
    return n
  }
}

/**
 * The crash quarantine: a run that was executing when its sandbox host died blames its origin
 * (the client address, or its /64 for IPv6; see client-origin.ts) in that circle, which is
 * refused for a back-off that doubles with each crash. Others keep using the circle. Only when
 * crashes of one circle come from `circleOrigins` different origins within the window is the
 * whole circle refused, with a back-off of its own.
 *
 * A caller key is not part of the blame: keys cost nothing to make, so an attacker would sign
 * each bomb with a new one; an address is what costs an attacker something.
 */
export class Quarantine {
  private readonly backoffs: Backoffs
  /** The latest distinct origins to crash each circle, oldest first (at most `circleOrigins`). */
  private readonly crashers = new Map<string, { origin: string; at: number }[]>()
  private readonly windowMs: number
  private readonly circleOrigins: number
  private readonly maxKeys: number
  private readonly now: () => number

  constructor(options: QuarantineOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULTS.QUARANTINE_WINDOW_MS
    this.circleOrigins = options.circleOrigins ?? DEFAULTS.QUARANTINE_CIRCLE_ORIGINS
    this.maxKeys = options.maxKeys ?? 100_000
    this.now = options.now ?? (() => performance.now())
    this.backoffs = new Backoffs(options.baseMs ?? DEFAULTS.QUARANTINE_BASE_MS, options.maxMs ?? DEFAULTS.QUARANTINE_MAX_MS, this.windowMs, this.maxKeys, this.now)
  }

  /**
   * A run from `origin` was executing in `circle` when its host died. Returns the back-off the
   * origin now serves there, how many origins crashed the circle within the window, and the
   * circle's back-off when that made the whole circle quarantined.
   */
  crashed(circle: string, origin: string): { readonly originMs: number; readonly origins: number; readonly circleMs: number | undefined } {
    const originMs = this.backoffs.strike(originKey(circle, origin))
    const now = this.now()
    const recent = (this.crashers.get(circle) ?? []).filter((c) => c.origin !== origin && now - c.at <= this.windowMs)
    recent.push({ origin, at: now })
    if (recent.length > this.circleOrigins) recent.shift()
    // Re-inserted, so that the map's order is the order of the latest crash (the oldest go first).
    this.crashers.delete(circle)
    if (this.crashers.size >= this.maxKeys) this.crashers.delete(this.crashers.keys().next().value as string)
    this.crashers.set(circle, recent)
    const circleMs = recent.length >= this.circleOrigins ? this.backoffs.strike(circleKey(circle)) : undefined
    return { originMs, origins: recent.length, circleMs }
  }

  /** Whether `origin` is refused in `circle` now: for how long, and whom the refusal is for. */
  refused(circle: string, origin: string): { readonly scope: QuarantineScope; readonly ms: number } | undefined {
    if (this.backoffs.empty) return undefined
    const circleMs = this.backoffs.remaining(circleKey(circle))
    if (circleMs > 0) return { scope: 'circle', ms: circleMs }
    const originMs = this.backoffs.remaining(originKey(circle, origin))
    return originMs > 0 ? { scope: 'origin', ms: originMs } : undefined
  }

  /** Origins (in a circle) and circles refused right now. */
  get active(): number {
    return this.backoffs.active
  }
}

function originKey(circle: string, origin: string): string {
  return `origin ${circle} ${origin}`
}

function circleKey(circle: string): string {
  return `circle ${circle}`
}

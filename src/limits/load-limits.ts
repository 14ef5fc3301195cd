import { isIP } from 'node:net'
import { DEFAULTS, positiveIntegerOption } from '../config/index.js'
import { circlesError, type CirclesError } from '../errors/index.js'
import { SYSTEM_CLOCK, type Clock } from './clock.js'
import { Quarantine } from './quarantine.js'
import { TokenBuckets } from './token-buckets.js'

/** Load limits of a node (defaults in src/config/defaults.ts; every one can be changed). */
export interface LoadLimitOptions {
  /** Off: no load limit applies (the crash quarantine still does). Default on. */
  readonly enabled?: boolean
  /**
   * Apply the limits to loopback addresses too. Default off: benchmarks and tools on the same
   * machine measure the engine, not the limiter.
   */
  readonly loopback?: boolean
  /** Open WebSocket connections per remote address. */
  readonly connectionsPerAddress?: number
  /** `fetch_nonce` requests per remote address per minute. */
  readonly noncesPerMinute?: number
  /** Failed `authenticate` attempts per remote address per minute; past it, auth requests close the socket. */
  readonly failedAuthPerMinute?: number
  /** `play` requests per second per caller (an authenticated key, or the address of an anonymous one). */
  readonly playsPerSecond?: number
  /** Frames per second per remote address, every frame counted (also the burst); past it its sockets are not read for a while. */
  readonly framesPerSecond?: number
  /** Frame bytes per second per remote address, every frame counted (also the burst); past it its sockets are not read for a while. */
  readonly frameBytesPerSecond?: number
  /** Frames that run nothing (refused whole) per socket per minute (also the burst); past it the socket is closed. */
  readonly invalidFramesPerMinute?: number
  /** The first crash-quarantine back-off (doubling with each crash). */
  readonly quarantineBaseMs?: number
  /** The longest crash-quarantine back-off. */
  readonly quarantineMaxMs?: number
  /** Crashes are forgotten after this long without one; crashes of a circle count together within it. */
  readonly quarantineWindowMs?: number
  /** Origins whose crashes within the window quarantine a whole circle. */
  readonly quarantineCircleOrigins?: number
}

/** The default of each numeric option. */
const LIMIT_DEFAULTS = {
  connectionsPerAddress: DEFAULTS.CONNECTIONS_PER_ADDRESS,
  noncesPerMinute: DEFAULTS.NONCES_PER_MINUTE_PER_ADDRESS,
  failedAuthPerMinute: DEFAULTS.FAILED_AUTH_PER_MINUTE_PER_ADDRESS,
  playsPerSecond: DEFAULTS.PLAYS_PER_SECOND_PER_CALLER,
  framesPerSecond: DEFAULTS.FRAMES_PER_SECOND_PER_ADDRESS,
  frameBytesPerSecond: DEFAULTS.FRAME_BYTES_PER_SECOND_PER_ADDRESS,
  invalidFramesPerMinute: DEFAULTS.INVALID_FRAMES_PER_MINUTE_PER_SOCKET,
  quarantineBaseMs: DEFAULTS.QUARANTINE_BASE_MS,
  quarantineMaxMs: DEFAULTS.QUARANTINE_MAX_MS,
  quarantineWindowMs: DEFAULTS.QUARANTINE_WINDOW_MS,
  quarantineCircleOrigins: DEFAULTS.QUARANTINE_CIRCLE_ORIGINS,
} as const satisfies Partial<Record<keyof LoadLimitOptions, number>>

export type LimitName = 'connections' | 'nonces' | 'failed_auth' | 'plays' | 'quarantine' | 'frames' | 'frame_bytes' | 'invalid_frames'

/** An IPv4 or IPv6 loopback address (including IPv4-mapped IPv6). */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  if (a === '::1') return true
  return isIP(a) === 4 && a.startsWith('127.')
}

function limited(limit: LimitName, retryAfterMs: number, message: string, details: Record<string, unknown> = {}): CirclesError {
  return circlesError('RATE_LIMITED', message, { limit, retry_after_ms: retryAfterMs, ...details })
}

const QUARANTINE_MESSAGE = {
  origin: 'Scripts sent from this address crashed the sandbox in this circle: they are refused here for a while',
  circle: 'Scripts from several addresses crashed the sandbox in this circle: it is refused for a while',
} as const

/**
 * The node's load limits — token buckets per origin (a client address, its /64 for IPv6: see
 * client-origin.ts), per caller and per socket — and the crash quarantine. Every check answers
 * `undefined` (go ahead) or what to refuse with: RATE_LIMITED with `data.retry_after_ms`.
 *
 * @example
 * const limits = new LoadLimits({ loopback: true, playsPerSecond: 10 })
 * const refusal = limits.play(callerKey, origin, circle)
 */
export class LoadLimits {
  readonly enabled: boolean
  private readonly loopback: boolean
  private readonly maxConnections: number
  private readonly open = new Map<string, number>()
  private readonly nonces: TokenBuckets
  private readonly failures: TokenBuckets
  private readonly plays: TokenBuckets
  private readonly frames: TokenBuckets
  private readonly frameBytes: TokenBuckets
  private readonly invalidFrames: TokenBuckets
  private readonly quarantine: Quarantine

  constructor(options: LoadLimitOptions = {}, clock: Clock = SYSTEM_CLOCK) {
    this.enabled = options.enabled ?? true
    this.loopback = options.loopback ?? false
    const option = (key: keyof LoadLimitOptions & keyof typeof LIMIT_DEFAULTS) => positiveIntegerOption(options[key] as number | undefined, LIMIT_DEFAULTS[key], `limits.${key}`)
    this.maxConnections = option('connectionsPerAddress')
    const now = () => clock.now()
    const perMinute = (n: number) => new TokenBuckets(n, n / 60, undefined, now)
    const perSecond = (n: number) => new TokenBuckets(n, n, undefined, now)
    this.nonces = perMinute(option('noncesPerMinute'))
    this.failures = perMinute(option('failedAuthPerMinute'))
    this.plays = perSecond(option('playsPerSecond'))
    this.frames = perSecond(option('framesPerSecond'))
    this.frameBytes = perSecond(option('frameBytesPerSecond'))
    this.invalidFrames = perMinute(option('invalidFramesPerMinute'))
    this.quarantine = new Quarantine({
      baseMs: option('quarantineBaseMs'),
      maxMs: option('quarantineMaxMs'),
      windowMs: option('quarantineWindowMs'),
      circleOrigins: option('quarantineCircleOrigins'),
      now,
    })
  }

  /** Origins seen lately and whether the limits apply to them (checked on every request). */
  private readonly appliesTo = new Map<string, boolean>()

  /** Whether per-address limits apply to `origin` (not when off, nor to loopback unless asked). */
  applies(origin: string): boolean {
    let applies = this.appliesTo.get(origin)
    if (applies === undefined) {
      applies = this.enabled && (this.loopback || !isLoopback(origin))
      if (this.appliesTo.size >= 10_000) this.appliesTo.clear()
      this.appliesTo.set(origin, applies)
    }
    return applies
  }

  /** A new connection from `origin`; pair every accepted one with {@link disconnected}. */
  connect(origin: string): CirclesError | undefined {
    if (!this.applies(origin)) return undefined
    const n = this.open.get(origin) ?? 0
    if (n >= this.maxConnections) {
      return limited('connections', 1_000, `At most ${this.maxConnections} connections from one address`)
    }
    this.open.set(origin, n + 1)
    return undefined
  }

  disconnected(origin: string): void {
    const n = this.open.get(origin)
    if (n === undefined) return
    if (n <= 1) this.open.delete(origin)
    else this.open.set(origin, n - 1)
  }

  /**
   * A frame of `bytes` arrived from `origin` (whatever it holds: refused frames cost their
   * sender too). Returns how long the origin's sockets should not be read, and which budget is
   * spent, or undefined.
   */
  frame(origin: string, bytes: number): { readonly limit: LimitName; readonly waitMs: number } | undefined {
    if (!this.applies(origin)) return undefined
    const frames = this.frames.charge(origin, 1)
    const bytesWait = this.frameBytes.charge(origin, bytes)
    if (frames === 0 && bytesWait === 0) return undefined
    return bytesWait >= frames ? { limit: 'frame_bytes', waitMs: bytesWait } : { limit: 'frames', waitMs: frames }
  }

  /**
   * A frame from `origin` on socket `socket` ran nothing (it was refused whole). Returns the
   * RATE_LIMITED error to close the socket with once it is over the per-socket budget.
   */
  invalidFrame(socket: string, origin: string): CirclesError | undefined {
    if (!this.applies(origin)) return undefined
    const wait = this.invalidFrames.take(socket)
    return wait === 0 ? undefined : limited('invalid_frames', wait, 'Too many invalid frames on this connection: it is closed')
  }

  /** Socket `socket` closed: its per-socket budgets go with it. */
  socketClosed(socket: string): void {
    this.invalidFrames.delete(socket)
  }

  /** A `fetch_nonce` from `origin`. */
  nonce(origin: string): CirclesError | undefined {
    if (!this.applies(origin)) return undefined
    const failed = this.failures.wait(origin)
    if (failed > 0) return limited('failed_auth', failed, 'Too many failed authentications from this address')
    const wait = this.nonces.take(origin)
    return wait === 0 ? undefined : limited('nonces', wait, 'Too many nonce requests from this address')
  }

  /** Before verifying an `authenticate` from `origin`: refused while its failures are over the limit. */
  authenticate(origin: string): CirclesError | undefined {
    if (!this.applies(origin)) return undefined
    const wait = this.failures.wait(origin)
    return wait === 0 ? undefined : limited('failed_auth', wait, 'Too many failed authentications from this address')
  }

  /** An `authenticate` from `origin` failed. */
  authFailed(origin: string): void {
    if (this.applies(origin)) this.failures.take(origin)
  }

  /**
   * A `play` by `caller` ('' when anonymous) from `origin` to `circle`. The crash quarantine
   * applies always (loopback and limits off included); the rate limit as the other limits do.
   */
  play(caller: string, origin: string, circle: string): CirclesError | undefined {
    const quarantined = this.refusal(circle, origin)
    if (quarantined !== undefined) return quarantined
    if (!this.applies(origin)) return undefined
    const wait = this.plays.take(caller === '' ? `address:${origin}` : caller)
    return wait === 0 ? undefined : limited('plays', wait, 'Too many plays from this caller')
  }

  /**
   * A call by a run of context `context`, in a workflow that a client at `address` started
   * (undefined: a local caller). It is judged by both: the crash quarantine of the address in
   * the calling context (or of the whole calling context) refuses it, and it costs a play of
   * each (when the limits apply to the address).
   */
  call(context: string, address: string | undefined): CirclesError | undefined {
    const quarantined = this.refusal(context, address ?? '')
    if (quarantined !== undefined) return quarantined
    if (address === undefined || !this.applies(address)) return undefined
    const addressKey = `address:${address}`
    const wait = Math.max(this.plays.wait(context), this.plays.wait(addressKey))
    if (wait > 0) return limited('plays', wait, 'Too many plays and calls from this workflow')
    this.plays.take(context)
    this.plays.take(addressKey)
    return undefined
  }

  /**
   * A run from `origin` ('' when it came from no client) in `circle` was executing when its
   * sandbox host died: the origin is quarantined in the circle, and the circle too once
   * crashes from enough origins within the window.
   */
  crashed(circle: string, origin: string): ReturnType<Quarantine['crashed']> {
    return this.quarantine.crashed(circle, origin)
  }

  /** Whether a run from `origin` in `circle` is refused by the crash quarantine now. */
  refusal(circle: string, origin: string): CirclesError | undefined {
    const refused = this.quarantine.refused(circle, origin)
    return refused === undefined ? undefined : limited('quarantine', refused.ms, QUARANTINE_MESSAGE[refused.scope], { scope: refused.scope })
  }

  get quarantined(): number {
    return this.quarantine.active
  }
}

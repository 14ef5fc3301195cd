import { isIP } from 'node:net'
import { DEFAULTS } from '../config/index.js'
import { circlesError, type CirclesError } from '../errors/index.js'
import { Quarantine } from './quarantine.js'
import { TokenBuckets } from './token-buckets.js'

/** Load limits of a node (defaults in src/config/defaults.ts; every one can be changed). */
export interface LoadLimitOptions {
  /** Off: no load limit applies (the crash quarantine of circles still does). Default on. */
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
}

export type LimitName = 'connections' | 'nonces' | 'failed_auth' | 'plays' | 'quarantine'

/** An IPv4 or IPv6 loopback address (including IPv4-mapped IPv6). */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  if (a === '::1') return true
  return isIP(a) === 4 && a.startsWith('127.')
}

function limited(limit: LimitName, retryAfterMs: number, message: string): CirclesError {
  return circlesError('RATE_LIMITED', message, { limit, retry_after_ms: retryAfterMs })
}

/**
 * The node's load limits — token buckets per remote address and per caller — and the crash
 * quarantine of circles and addresses whose scripts kill sandbox hosts. Every check answers
 * `undefined` (go ahead) or the RATE_LIMITED error to answer, with `data.retry_after_ms`.
 *
 * @example
 * const limits = new LoadLimits({ loopback: true, playsPerSecond: 10 })
 * const refusal = limits.play(callerKey, address)
 */
export class LoadLimits {
  readonly enabled: boolean
  private readonly loopback: boolean
  private readonly maxConnections: number
  private readonly open = new Map<string, number>()
  private readonly nonces: TokenBuckets
  private readonly failures: TokenBuckets
  private readonly plays: TokenBuckets
  private readonly quarantine = new Quarantine()

  constructor(options: LoadLimitOptions = {}) {
    this.enabled = options.enabled ?? true
    this.loopback = options.loopback ?? false
    this.maxConnections = options.connectionsPerAddress ?? DEFAULTS.CONNECTIONS_PER_ADDRESS
    const perMinute = (n: number) => new TokenBuckets(n, n / 60)
    this.nonces = perMinute(options.noncesPerMinute ?? DEFAULTS.NONCES_PER_MINUTE_PER_ADDRESS)
    this.failures = perMinute(options.failedAuthPerMinute ?? DEFAULTS.FAILED_AUTH_PER_MINUTE_PER_ADDRESS)
    const plays = options.playsPerSecond ?? DEFAULTS.PLAYS_PER_SECOND_PER_CALLER
    this.plays = new TokenBuckets(plays, plays)
  }

  /** Addresses seen lately and whether the limits apply to them (checked on every request). */
  private readonly appliesTo = new Map<string, boolean>()

  private applies(address: string): boolean {
    let applies = this.appliesTo.get(address)
    if (applies === undefined) {
      applies = this.enabled && (this.loopback || !isLoopback(address))
      if (this.appliesTo.size >= 10_000) this.appliesTo.clear()
      this.appliesTo.set(address, applies)
    }
    return applies
  }

  /** A new connection from `address`; pair every accepted one with {@link disconnected}. */
  connect(address: string): CirclesError | undefined {
    if (!this.applies(address)) return undefined
    const n = this.open.get(address) ?? 0
    if (n >= this.maxConnections) {
      return limited('connections', 1_000, `At most ${this.maxConnections} connections from one address`)
    }
    this.open.set(address, n + 1)
    return undefined
  }

  disconnected(address: string): void {
    const n = this.open.get(address)
    if (n === undefined) return
    if (n <= 1) this.open.delete(address)
    else this.open.set(address, n - 1)
  }

  /** A `fetch_nonce` from `address`. */
  nonce(address: string): CirclesError | undefined {
    if (!this.applies(address)) return undefined
    const failed = this.failures.wait(address)
    if (failed > 0) return limited('failed_auth', failed, 'Too many failed authentications from this address')
    const wait = this.nonces.take(address)
    return wait === 0 ? undefined : limited('nonces', wait, 'Too many nonce requests from this address')
  }

  /** Before verifying an `authenticate` from `address`: refused while its failures are over the limit. */
  authenticate(address: string): CirclesError | undefined {
    if (!this.applies(address)) return undefined
    const wait = this.failures.wait(address)
    return wait === 0 ? undefined : limited('failed_auth', wait, 'Too many failed authentications from this address')
  }

  /** An `authenticate` from `address` failed. */
  authFailed(address: string): void {
    if (this.applies(address)) this.failures.take(address)
  }

  /**
   * A `play` by `caller` ('' when anonymous) from `address` to `circle`. The crash quarantine
   * applies to the circle always, and to the address as the other limits do.
   */
  play(caller: string, address: string, circle: string): CirclesError | undefined {
    const circleWait = this.quarantine.empty ? 0 : this.quarantine.remaining(`circle:${circle}`)
    if (circleWait > 0) return limited('quarantine', circleWait, 'Scripts run in this circle crashed the sandbox: it is refused for a while')
    if (!this.applies(address)) return undefined
    const addressWait = this.quarantine.empty ? 0 : this.quarantine.remaining(`address:${address}`)
    if (addressWait > 0) return limited('quarantine', addressWait, 'Scripts sent from this address crashed the sandbox: it is refused for a while')
    const wait = this.plays.take(caller === '' ? `address:${address}` : caller)
    return wait === 0 ? undefined : limited('plays', wait, 'Too many plays from this caller')
  }

  /**
   * A call by a run of context `context`, in a workflow that a client at `address` started
   * (undefined: a local caller). It is judged by both: the crash quarantine of the calling
   * context or of the address refuses it, and it costs a play of each (when the limits apply to
   * the address).
   */
  call(context: string, address: string | undefined): CirclesError | undefined {
    const contextWait = this.quarantine.empty ? 0 : this.quarantine.remaining(`circle:${context}`)
    if (contextWait > 0) return limited('quarantine', contextWait, 'Scripts run in the calling context crashed the sandbox: its calls are refused for a while')
    if (address === undefined || !this.applies(address)) return undefined
    const addressKey = `address:${address}`
    const addressWait = this.quarantine.empty ? 0 : this.quarantine.remaining(addressKey)
    if (addressWait > 0) return limited('quarantine', addressWait, 'Scripts sent from this address crashed the sandbox: it is refused for a while')
    const wait = Math.max(this.plays.wait(context), this.plays.wait(addressKey))
    if (wait > 0) return limited('plays', wait, 'Too many plays and calls from this workflow')
    this.plays.take(context)
    this.plays.take(addressKey)
    return undefined
  }

  /**
   * A run from `origin` in `circle` was executing when its sandbox host died. Returns the
   * back-offs now served by the circle and by the address (undefined when limits do not apply to it).
   */
  crashed(circle: string, origin: string | undefined): { readonly circleMs: number; readonly addressMs: number | undefined } {
    const circleMs = this.quarantine.strike(`circle:${circle}`)
    const addressMs = origin !== undefined && this.applies(origin) ? this.quarantine.strike(`address:${origin}`) : undefined
    return { circleMs, addressMs }
  }

  /** Whether a run that had not started when its host died may run on the next host. */
  refusal(circle: string, origin: string | undefined): CirclesError | undefined {
    const circleWait = this.quarantine.remaining(`circle:${circle}`)
    if (circleWait > 0) return limited('quarantine', circleWait, 'Scripts run in this circle crashed the sandbox: it is refused for a while')
    if (origin === undefined || !this.applies(origin)) return undefined
    const addressWait = this.quarantine.remaining(`address:${origin}`)
    return addressWait > 0 ? limited('quarantine', addressWait, 'Scripts sent from this address crashed the sandbox: it is refused for a while') : undefined
  }

  get quarantined(): number {
    return this.quarantine.active
  }
}

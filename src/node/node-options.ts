import { DEFAULTS, positiveIntegerOption } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import type { FaultName, Faults } from '../faults/index.js'
import type { KeyPair, PublicKeyHex } from '../identity/index.js'
import type { Clock, LoadLimitOptions } from '../limits/index.js'
import type { Logger } from '../log/index.js'
import type { LiveOptions, PeerOverrides } from '../actors/peer/index.js'
import type { GatewayLimits } from '../actors/gateway/index.js'
import type { Policy } from '../policy/index.js'
import type { RunLimits, SandboxPoolOptions } from '../sandbox/index.js'
import { DEFAULT_PREFIX, isValidPrefix, type RedisTarget } from '../queue/index.js'
import { parseDomains, parseOrigins, type Domain, type TlsCredentials } from '../server/index.js'

/** A circle served on a port of this node. */
export interface NodeCircle {
  readonly name: string
  readonly keyPair: KeyPair
  readonly host: string
  readonly port: number
  readonly policy?: Policy | unknown
  readonly overrides?: PeerOverrides
  /** Serve https/wss on the port with this certificate and key. */
  readonly tls?: TlsCredentials
  /** The names the port answers to (default: the node's `domains`); see docs/configuration.md. */
  readonly domains?: readonly string[]
  /** Browser origins that may connect besides the port's own (default: the node's `allowedOrigins`). */
  readonly allowedOrigins?: readonly string[]
}

export interface CircleNodeOptions {
  readonly dbPath: string
  readonly circles: readonly NodeCircle[]
  /** Gateway limits; defaults from DEFAULTS. */
  readonly gateway?: Partial<Omit<GatewayLimits, 'drainTimeoutMs'>>
  /** Defaults for every peer context (limits, quota, mailbox, passivation). */
  readonly peers?: PeerOverrides
  /** Live updates: each context's change log and subscription caps (defaults from DEFAULTS). */
  readonly live?: LiveOptions & { readonly maxSubscriptionsPerAddress?: number }
  readonly sandbox?: Omit<SandboxPoolOptions, 'hooks' | 'faults'>
  /** Load limits (rate limits per address and caller; on by default except for loopback). */
  readonly limits?: LoadLimitOptions
  /**
   * Reverse proxies whose `X-Forwarded-For` header names the client (addresses or CIDR ranges).
   * From any other peer the header is ignored. Default none.
   */
  readonly trustedProxies?: readonly string[]
  /** What the limiters and the gateway's timers read time from (tests step one; default the process clock). */
  readonly clock?: Clock
  /** Register every namespace already under `dbPath` (default true). */
  readonly adoptExisting?: boolean
  /** Further contexts to host from the start, served through Redis or the ports (a worker's). */
  readonly contexts?: readonly string[]
  readonly drainTimeoutMs?: number
  /** The node's root logger (default: stderr, at `$CIRCLES_LOG_LEVEL` or warn). */
  readonly logger?: Logger
  /** An admin listener for `/metrics` and the detailed `/healthz` (none when absent). */
  readonly admin?: { readonly host?: string; readonly port: number }
  /** How often the sandbox hosts answer a probe run (for `/healthz`). */
  readonly probeIntervalMs?: number
  /** Install the process-wide last-resort handlers for unhandled errors (default true). */
  readonly lastResort?: boolean
  /** Faults to inject (tests only; default: `$CIRCLES_TEST_FAULTS`); a `Faults` to pull triggered ones. */
  readonly faults?: readonly FaultName[] | Faults
  /**
   * The exclusive lock on `dbPath` (one process serves a database path at a time): `fail`
   * (default) refuses to start with DB_LOCKED while another process holds it; `wait` waits for
   * the holder to go (a standby).
   */
  readonly lock?: 'fail' | 'wait'
  /** Join other nodes through Redis (cross-node queueing). Without it nothing connects to Redis. */
  readonly redis?: NodeRedisOptions
  /**
   * Names every port (and the admin listener) answers to besides loopback and this machine's
   * addresses, for circles that list none of their own: `circle.example`, `circle.example:8443`,
   * `wss://circle.example` (clients dial TLS at a proxy). A sign-in message names the node by it.
   */
  readonly domains?: readonly string[]
  /** Browser origins that may open connections besides a port's own, for circles that list none (`*`: any). */
  readonly allowedOrigins?: readonly string[]
}

export interface NodeRedisOptions {
  readonly target: RedisTarget
  /** The secret every node of the cluster shares (tasks and replies carry a MAC made with it). */
  readonly secret: string
  /** Key prefix (default `rhailib:`): tests and several clusters on one Redis keep apart by it. */
  readonly prefix?: string
  /** How long a task may wait for its owner beyond its run's wall limit (default 30 s). */
  readonly queueAllowanceMs?: number
  /** Bytes of tasks one caller address may have stored in Redis by this node and not answered (default 32 MiB). */
  readonly queuedBytesPerAddress?: number
  /** Bytes of tasks this node may have stored in Redis and not answered, all callers together (default 256 MiB). */
  readonly queuedBytesPerGateway?: number
}

export interface ServedCircle {
  readonly name: string
  readonly publicKey: PublicKeyHex
  readonly url: string
  readonly port: number
}

/** What ended a node that stopped on its own: its root supervisor gave up. */
export interface NodeFailure {
  readonly error: Error
}

/** An option that breaks its rule: INVALID_OPTION naming it. */
export function optionFail(field: string, rule: string): never {
  throw circlesError('INVALID_OPTION', `options.${field} ${rule}`)
}

/** The names and browser origins each circle's port answers to (its own, else the node's). */
export function circleNames(options: CircleNodeOptions): Map<string, { domains: Domain[]; allowedOrigins: string[] }> {
  const nodeDomains = parseDomains(options.domains, 'domains', optionFail)
  const nodeOrigins = parseOrigins(options.allowedOrigins, 'allowedOrigins', optionFail)
  const names = new Map<string, { domains: Domain[]; allowedOrigins: string[] }>()
  for (const [i, circle] of options.circles.entries()) {
    names.set(circle.name, {
      domains: circle.domains === undefined ? nodeDomains : parseDomains(circle.domains, `circles[${i}].domains`, optionFail),
      allowedOrigins: circle.allowedOrigins === undefined ? nodeOrigins : parseOrigins(circle.allowedOrigins, `circles[${i}].allowedOrigins`, optionFail),
    })
  }
  return names
}

/** Check the Redis options before anything starts (the bridge reads them as given). */
export function checkRedisOptions(redis: NodeRedisOptions | undefined): void {
  if (redis === undefined) return
  const { prefix = DEFAULT_PREFIX, secret, queueAllowanceMs, queuedBytesPerAddress, queuedBytesPerGateway } = redis
  if (!isValidPrefix(prefix)) optionFail('redis.prefix', 'must be 1-64 of A-Z a-z 0-9 _ . : -')
  if (typeof secret !== 'string' || Buffer.byteLength(secret) < 16) optionFail('redis.secret', '(the cluster secret) must be at least 16 bytes')
  positiveIntegerOption(queueAllowanceMs, DEFAULTS.QUEUE_ALLOWANCE_MS, 'redis.queueAllowanceMs')
  positiveIntegerOption(queuedBytesPerAddress, DEFAULTS.QUEUED_BYTES_PER_ADDRESS, 'redis.queuedBytesPerAddress')
  positiveIntegerOption(queuedBytesPerGateway, DEFAULTS.QUEUED_BYTES_PER_GATEWAY, 'redis.queuedBytesPerGateway')
}

/** The gateway's limits: the options over DEFAULTS, checked. */
export function gatewayLimits(options: CircleNodeOptions): GatewayLimits {
  let limits: GatewayLimits = {
    maxFrameBytes: DEFAULTS.MAX_FRAME_BYTES,
    maxBatchEntries: DEFAULTS.MAX_BATCH_ENTRIES,
    maxFrameDepth: DEFAULTS.MAX_FRAME_DEPTH,
    maxFrameValues: DEFAULTS.MAX_FRAME_VALUES,
    maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
    maxInFlight: DEFAULTS.MAX_IN_FLIGHT_PER_SOCKET,
    maxBufferedBytes: DEFAULTS.MAX_BUFFERED_BYTES,
    maxBufferedBytesPerAddress: DEFAULTS.MAX_BUFFERED_BYTES_PER_ADDRESS,
    maxBufferedBytesPerNode: DEFAULTS.MAX_BUFFERED_BYTES_PER_NODE,
    socketHighWaterBytes: DEFAULTS.SOCKET_HIGH_WATER_BYTES,
    maxBatchAnswerBytes: DEFAULTS.MAX_BATCH_ANSWER_BYTES,
    nonceTtlMs: DEFAULTS.NONCE_TTL_MS,
    idleTimeoutMs: DEFAULTS.IDLE_TIMEOUT_MS,
    maxSubscriptions: DEFAULTS.SUBSCRIPTIONS_PER_SOCKET,
    pingIntervalMs: DEFAULTS.SUBSCRIBER_PING_INTERVAL_MS,
    ...options.gateway,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULTS.DRAIN_TIMEOUT_MS,
  }
  if (options.gateway?.maxBatchAnswerBytes === undefined) {
    // A batch's answers must fit the socket's buffer with room to spare, or a client that reads
    // would still be cut.
    limits = { ...limits, maxBatchAnswerBytes: Math.min(DEFAULTS.MAX_BATCH_ANSWER_BYTES, Math.floor(limits.maxBufferedBytes / 2)) }
  }
  for (const [key, value] of Object.entries(limits)) positiveIntegerOption(value, 1, `gateway.${key}`)
  if (limits.maxBatchAnswerBytes >= limits.maxBufferedBytes) {
    throw circlesError('INVALID_OPTION', 'options.gateway.maxBatchAnswerBytes must be below options.gateway.maxBufferedBytes')
  }
  if (limits.maxBufferedBytesPerAddress < limits.maxBufferedBytes || limits.maxBufferedBytesPerNode < limits.maxBufferedBytesPerAddress) {
    throw circlesError('INVALID_OPTION', 'options.gateway: maxBufferedBytes ≤ maxBufferedBytesPerAddress ≤ maxBufferedBytesPerNode must hold')
  }
  return limits
}

/** The limits a client reads in `describe` (a context's run limits when the node hosts it). */
export function describeLimits(limits: GatewayLimits, run: RunLimits | undefined): Record<string, number> {
  return {
    max_frame_bytes: limits.maxFrameBytes,
    max_batch_entries: limits.maxBatchEntries,
    max_frame_depth: limits.maxFrameDepth,
    max_frame_values: limits.maxFrameValues,
    max_batch_answer_bytes: limits.maxBatchAnswerBytes,
    max_script_bytes: limits.maxScriptBytes,
    max_in_flight_per_connection: limits.maxInFlight,
    max_buffered_bytes_per_connection: limits.maxBufferedBytes,
    max_buffered_bytes_per_address: limits.maxBufferedBytesPerAddress,
    nonce_ttl_ms: limits.nonceTtlMs,
    idle_timeout_ms: limits.idleTimeoutMs,
    max_subscriptions_per_connection: limits.maxSubscriptions,
    ...(run === undefined
      ? {}
      : {
          script_timeout_ms: run.timeoutMs,
          script_cpu_ms: run.cpuMs,
          script_memory_mb: run.memoryMb,
          max_output_bytes: run.maxOutputBytes,
          max_log_bytes: run.maxLogBytes,
          max_log_lines: run.maxLogLines,
          max_emits: run.maxEmits,
          max_emit_bytes: run.maxEmitBytes,
          max_notify_value_bytes: run.maxNotifyValueBytes,
        }),
  }
}

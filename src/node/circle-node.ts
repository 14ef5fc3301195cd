import { join } from 'node:path'
import { DEFAULTS, VERSION, positiveIntegerOption } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { Faults, type FaultName } from '../faults/index.js'
import { parsePublicKey, type KeyPair, type PublicKeyHex } from '../identity/index.js'
import { ClientAddresses, LoadLimits, SendBudget, SYSTEM_CLOCK, type Clock, type LoadLimitOptions } from '../limits/index.js'
import { createLogger, type Logger } from '../log/index.js'
import { NodeMetrics } from '../metrics/index.js'
import { PeerHost, DEFAULT_QUOTA, type LiveOptions, type PeerOverrides, type PlayOutcome, type PlayRequest } from '../actors/peer/index.js'
import { AddressSubscriptions } from '../live/index.js'
import { playResultOf, type PlayResult } from '../protocol/index.js'
import type { GatewayLimits, GatewayServices } from '../actors/gateway/index.js'
import type { Policy } from '../policy/index.js'
import { DEFAULT_LIMITS, SandboxPool, type SandboxContextRef, type SandboxPoolOptions } from '../sandbox/index.js'
import { callThrough, DEFAULT_PREFIX, FeedRelay, isValidPrefix, RedisBridge, type RedisTarget } from '../queue/index.js'
import { AdminServer, CircleServer, parseDomains, parseOrigins, type Domain, type PublicHealth, type TlsCredentials } from '../server/index.js'
import { Supervisor, type ChildSpec, type SupervisorEvent, type SupervisorTree } from '../supervisor/index.js'
import { acquireDatabaseLock, type DatabaseLock, type DatabaseLockHolder } from '../storage/index.js'
import { Verifier } from '../verifier/index.js'
import { installLastResort } from './last-resort.js'
import { startStandbyAdmin } from './standby-admin.js'

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

const PROBE_SCRIPT = '1 + 1'
/** How often a drain in progress logs what is still open. */
const DRAIN_PROGRESS_INTERVAL_MS = 1_000

/**
 * A Circle node: one process hosting many peer contexts, under one supervision tree.
 *
 *   root (one_for_one, 3 restarts / 60 s)
 *   ├── admin                      the admin listener, when configured (permanent)
 *   ├── sandbox (one_for_one, 5 / 30 s)  host-0 … host-N-1: sandbox host processes (permanent)
 *   ├── verifier                   the signature-check thread pool (permanent)
 *   ├── peers (one_for_one)        one peer actor per active context (temporary, added on demand)
 *   ├── redis                      the Redis bridge, when the node joins others (permanent)
 *   └── gateway:<name> (rest_for_one, 3 / 60 s)  listener (permanent), then one connection per socket (temporary)
 *
 * Children start in this order and stop in reverse (docs/operations.md, "Supervision").
 *
 * Parts find each other through the node (late-bound): a restarted verifier or sandbox serves
 * the connections already open. When the root gives up, the node logs why and reports it through
 * {@link onFailure}; the command line then exits non-zero.
 *
 * @example
 * const node = await CircleNode.start({ dbPath: './data', circles: [{ name: 'demo', keyPair, host: '127.0.0.1', port: 8090 }] })
 * const peer = await node.peers.spawnPeer({ pubkey: someKey })
 * await node.close()
 */
export class CircleNode {
  readonly metrics: NodeMetrics
  readonly served: ServedCircle[] = []
  readonly log: Logger
  readonly load: LoadLimits
  /** Bytes of answers waiting on the node's sockets, within their budgets. */
  readonly sendBudget: SendBudget
  private readonly root: Supervisor
  private limits: GatewayLimits
  private readonly pool: SandboxPool
  private readonly faults: Faults
  private verifierInstance!: Verifier
  private peerHost!: PeerHost
  private bridge: RedisBridge | undefined
  /** Live updates across nodes (src/queue/feed-relay.ts), with the bridge. */
  private relay: FeedRelay | undefined
  private readonly servers = new Map<string, () => CircleServer>()
  private admin: AdminServer | undefined
  private closing: Promise<void> | undefined
  private failure: NodeFailure | undefined
  private readonly failureListeners: ((failure: NodeFailure) => void)[] = []
  private readonly probes: { ref: SandboxContextRef; lastOk: number; pending: boolean }[] = []
  private probeTimer: NodeJS.Timeout | undefined
  private readonly probeIntervalMs: number
  private releaseLastResort: (() => void) | undefined
  private readonly authLog = { logged: 0, suppressed: 0, windowStart: 0 }

  private readonly dbLock: DatabaseLock

  private constructor(options: CircleNodeOptions, dbLock: DatabaseLock) {
    this.dbLock = dbLock
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULTS.DRAIN_TIMEOUT_MS
    this.limits = {
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
      drainTimeoutMs,
    }
    if (options.gateway?.maxBatchAnswerBytes === undefined) {
      // A batch's answers must fit the socket's buffer with room to spare, or a client that reads
      // would still be cut.
      this.limits = { ...this.limits, maxBatchAnswerBytes: Math.min(DEFAULTS.MAX_BATCH_ANSWER_BYTES, Math.floor(this.limits.maxBufferedBytes / 2)) }
    }
    for (const [key, value] of Object.entries(this.limits)) positiveIntegerOption(value, 1, `gateway.${key}`)
    if (this.limits.maxBatchAnswerBytes >= this.limits.maxBufferedBytes) {
      throw circlesError('INVALID_OPTION', 'options.gateway.maxBatchAnswerBytes must be below options.gateway.maxBufferedBytes')
    }
    if (this.limits.maxBufferedBytesPerAddress < this.limits.maxBufferedBytes || this.limits.maxBufferedBytesPerNode < this.limits.maxBufferedBytesPerAddress) {
      throw circlesError('INVALID_OPTION', 'options.gateway: maxBufferedBytes ≤ maxBufferedBytesPerAddress ≤ maxBufferedBytesPerNode must hold')
    }
    this.probeIntervalMs = positiveIntegerOption(options.probeIntervalMs, DEFAULTS.PROBE_INTERVAL_MS, 'probeIntervalMs')
    if (options.redis !== undefined) {
      const { prefix = DEFAULT_PREFIX, secret, queueAllowanceMs, queuedBytesPerAddress, queuedBytesPerGateway } = options.redis
      if (!isValidPrefix(prefix)) throw circlesError('INVALID_OPTION', 'options.redis.prefix must be 1-64 of A-Z a-z 0-9 _ . : -')
      if (typeof secret !== 'string' || Buffer.byteLength(secret) < 16) {
        throw circlesError('INVALID_OPTION', 'options.redis.secret (the cluster secret) must be at least 16 bytes')
      }
      positiveIntegerOption(queueAllowanceMs, DEFAULTS.QUEUE_ALLOWANCE_MS, 'redis.queueAllowanceMs')
      positiveIntegerOption(queuedBytesPerAddress, DEFAULTS.QUEUED_BYTES_PER_ADDRESS, 'redis.queuedBytesPerAddress')
      positiveIntegerOption(queuedBytesPerGateway, DEFAULTS.QUEUED_BYTES_PER_GATEWAY, 'redis.queuedBytesPerGateway')
    }
    const optionFail = (field: string, rule: string): never => {
      throw circlesError('INVALID_OPTION', `options.${field} ${rule}`)
    }
    const nodeDomains = parseDomains(options.domains, 'domains', optionFail)
    const nodeOrigins = parseOrigins(options.allowedOrigins, 'allowedOrigins', optionFail)
    const names = new Map<string, { domains: Domain[]; allowedOrigins: string[] }>()
    for (const [i, circle] of options.circles.entries()) {
      names.set(circle.name, {
        domains: circle.domains === undefined ? nodeDomains : parseDomains(circle.domains, `circles[${i}].domains`, optionFail),
        allowedOrigins: circle.allowedOrigins === undefined ? nodeOrigins : parseOrigins(circle.allowedOrigins, `circles[${i}].allowedOrigins`, optionFail),
      })
    }
    // Embedded without a logger, a node says only what needs attention, and on stderr.
    this.log = options.logger ?? createLogger({ level: process.env['CIRCLES_LOG_LEVEL'] ?? 'warn', destination: process.stderr })
    this.faults = options.faults instanceof Faults ? options.faults : new Faults(options.faults)
    const clock = options.clock ?? SYSTEM_CLOCK
    this.load = new LoadLimits(options.limits, clock)
    const clients = new ClientAddresses(options.trustedProxies)
    this.sendBudget = new SendBudget({
      perSocket: this.limits.maxBufferedBytes,
      perAddress: this.limits.maxBufferedBytesPerAddress,
      perNode: this.limits.maxBufferedBytesPerNode,
      appliesTo: (origin) => this.load.applies(origin),
    })
    const log = this.log
    const onSupervisorEvent = (event: SupervisorEvent) => this.onSupervisorEvent(event)
    this.pool = new SandboxPool({
      ...options.sandbox,
      faults: this.faults.names,
      ...(dbLock.fd === undefined ? {} : { inheritFd: dbLock.fd }),
      hooks: {
        // A run a call started answers to its calling context, which sent the script.
        onCrash: (run) => {
          // A run a call started answers in the calling context: that context sent the script.
          const circle = run.callingContext ?? run.circle
          const { originMs, origins, circleMs } = this.load.crashed(circle, run.origin ?? '')
          // The caller's key is logged for the operator; it takes no part in the blame (keys cost nothing).
          log.warn(
            { circle, remote: run.origin ?? null, caller: run.caller || null, backoff_ms: originMs, origins, ...(circleMs === undefined ? {} : { circle_backoff_ms: circleMs }) },
            circleMs === undefined
              ? 'a script crashed its sandbox host: its origin is quarantined in the circle'
              : 'a script crashed its sandbox host: crashes from several origins quarantine the whole circle',
          )
        },
        refuse: (run) => {
          const refusal = this.load.refusal(run.callingContext ?? run.circle, run.origin ?? '')
          if (refusal === undefined) return undefined
          this.metrics.limited('quarantine')
          // The same data as a refusal at the gateway: the limit and when to retry.
          const { limit, retry_after_ms: retryAfterMs } = refusal.details as { limit: string; retry_after_ms: number }
          return { code: 'RATE_LIMITED', message: refusal.message, body: `"limit":${JSON.stringify(limit)},"retry_after_ms":${retryAfterMs},"logs":[]`, runMs: 0, cpuMs: 0, callsMs: 0 }
        },
        onHostExit: (host, exit, blame) => {
          if (blame === 'none') return
          log.warn({ host, code: exit.code, signal: exit.signal, blame, stderr: exit.stderrTail.slice(-2000) }, 'sandbox host exited')
        },
        onHostStderr: (host, line) => log.warn({ host, line: line.slice(0, 1000) }, 'sandbox host stderr'),
        onHostHung: (host, silentMs) => log.error({ host, silent_ms: Math.round(silentMs) }, 'sandbox host hung (no answer past its run limits): killed'),
        onSupervisorEvent,
      },
    })
    this.metrics = new NodeMetrics({
      connectionsOpen: () => this.metricsConnections(),
      peers: () => this.peerHost?.size ?? { registered: 0, active: 0 },
      tasksQueued: () => this.peerHost?.load ?? 0,
      verifierQueued: () => this.verifierInstance?.queued ?? 0,
      hosts: () => this.pool.stats,
      quarantined: () => this.load.quarantined,
      live: () => {
        const peers = this.peerHost
        if (peers === undefined) return { subscriptions: 0, notifications: 0, logsLost: 0 }
        // Through other nodes: the gateway's subscribers count, the owner's relays do not.
        const relay = this.relay ?? { relayed: 0, subscriptions: 0, counters: { notifications: 0, relayedNotices: 0 } }
        return {
          subscriptions: peers.subscriptions - relay.relayed + relay.subscriptions,
          notifications: peers.counters.notifications - relay.counters.relayedNotices + relay.counters.notifications,
          logsLost: peers.counters.logsLost,
        }
      },
      sendWaiting: () => this.sendBudget.bytes,
      crossNode: () => (this.bridge === undefined ? undefined : { ...this.bridge.counters, ...this.bridge.depth, connected: this.bridge.connected }),
    })
    // The listeners read the current services: a restarted child replaces its instance.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this
    const { maxSubscriptionsPerAddress, ...live } = options.live ?? {}
    const services: GatewayServices = {
      limits: this.limits,
      subscriptions: new AddressSubscriptions(positiveIntegerOption(maxSubscriptionsPerAddress, DEFAULTS.SUBSCRIPTIONS_PER_ADDRESS, 'live.maxSubscriptionsPerAddress')),
      subscribe: (pubkey, subscriber, after) => {
        // A context another node hosts is watched through Redis.
        if (!this.peerHost.has(pubkey) && this.relay !== undefined) return this.relay.subscribe(pubkey, subscriber, after)
        return this.peerHost.subscribe(pubkey, subscriber, after)
      },
      metrics: this.metrics,
      load: this.load,
      clients,
      sendBudget: this.sendBudget,
      clock,
      log: log.child({ part: 'gateway' }),
      faults: this.faults,
      logAuthFailure: (address, code) => this.logAuthFailure(address, code),
      play: (pubkey, request) => this.route(pubkey, request),
      reaches: (pubkey) => node.bridge !== undefined || node.peerHost.has(pubkey),
      get peers() {
        return node.peerHost
      },
      get verifier() {
        return node.verifierInstance
      },
    }
    const children: ChildSpec[] = [
      {
        id: 'sandbox',
        type: 'supervisor',
        restart: 'permanent',
        shutdown: drainTimeoutMs + 6_000,
        start: async () => {
          const supervisor = this.pool.supervisor()
          await supervisor.start()
          return supervisor
        },
      },
      {
        id: 'verifier',
        restart: 'permanent',
        shutdown: 5_000,
        start: () => {
          this.verifierInstance = new Verifier()
          return this.verifierInstance
        },
      },
      {
        id: 'peers',
        type: 'supervisor',
        restart: 'permanent',
        shutdown: drainTimeoutMs + 1_000,
        start: async () => {
          this.peerHost = new PeerHost({
            dbPath: options.dbPath,
            pool: this.pool,
            shutdownMs: drainTimeoutMs,
            onSupervisorEvent,
            onRegistered: (pubkey) => this.bridge?.claim(pubkey),
            live,
            onPolicyChanged: (pubkey) => {
              this.relay?.policyChanged(pubkey)
              return this.bridge?.advertise(pubkey)
            },
            // A script a run passes to `call` is held to the size of a play's.
            defaults: { ...options.peers, limits: { maxScriptBytes: this.limits.maxScriptBytes, ...options.peers?.limits } },
            calls: {
              admit: (call) => {
                const refused = this.load.call(call.caller, call.origin)
                if (refused !== undefined) this.metrics.limited((refused.details as { limit: string }).limit)
                return refused
              },
              settled: (outcome) => this.metrics.call(outcome),
              // A callee another node owns is reached through Redis, as a client's play is.
              remote: (target, request) => (this.bridge === undefined ? undefined : callThrough(this.bridge, target, request)),
            },
          })
          for (const circle of options.circles) {
            await this.peerHost.spawnPeer({ pubkey: circle.keyPair.publicKey, policy: circle.policy, ...circle.overrides })
          }
          for (const pubkey of options.contexts ?? []) await this.peerHost.spawnPeer({ pubkey })
          if (options.adoptExisting !== false) await this.peerHost.adoptExisting()
          return this.peerHost.supervisor
        },
      },
      ...(options.redis === undefined
        ? []
        : [
            {
              id: 'redis',
              restart: 'permanent',
              shutdown: drainTimeoutMs + 2_000,
              start: () => {
                const redis = options.redis!
                const bridge = new RedisBridge({
                  target: redis.target,
                  prefix: redis.prefix ?? DEFAULT_PREFIX,
                  secret: redis.secret,
                  queueAllowanceMs: redis.queueAllowanceMs ?? DEFAULTS.QUEUE_ALLOWANCE_MS,
                  ...(redis.queuedBytesPerAddress === undefined ? {} : { queuedBytesPerAddress: redis.queuedBytesPerAddress }),
                  ...(redis.queuedBytesPerGateway === undefined ? {} : { queuedBytesPerGateway: redis.queuedBytesPerGateway }),
                  log,
                  peers: () => this.peerHost,
                  onFatal: (error) => this.fatal(error),
                })
                bridge.start()
                this.bridge = bridge
                const relay = new FeedRelay({
                  target: redis.target,
                  prefix: redis.prefix ?? DEFAULT_PREFIX,
                  secret: redis.secret,
                  nodeId: bridge.nodeId,
                  log: log.child({ part: 'feeds' }),
                  peers: () => this.peerHost,
                  live: this.peerHost.liveLimits,
                  onRefused: () => bridge.counters.refused++,
                })
                relay.start()
                this.relay = relay
                bridge.onExit(() => relay.stop())
                return bridge
              },
            } satisfies ChildSpec,
          ]),
      ...options.circles.map(
        (circle): ChildSpec => ({
          id: `gateway:${circle.name}`,
          type: 'supervisor',
          restart: 'permanent',
          shutdown: drainTimeoutMs + 4_000,
          start: async () => {
            const { supervisor, current } = await CircleServer.start({
              name: circle.name,
              circle: circle.keyPair.publicKey,
              host: circle.host,
              port: this.servers.get(circle.name)?.().port ?? circle.port,
              services,
              version: VERSION,
              describeLimits: () => this.describeLimits(circle.keyPair.publicKey),
              health: () => this.publicHealth(),
              ...names.get(circle.name)!,
              onSupervisorEvent,
              ...(circle.tls === undefined ? {} : { tls: circle.tls }),
            })
            this.servers.set(circle.name, current)
            return supervisor
          },
        }),
      ),
    ]
    const admin = options.admin
    if (admin !== undefined) {
      // First in, last out: the admin listener comes up before the rest (its health shows the
      // start) and is stopped after everything else, so /metrics and /healthz report a drain
      // to its end.
      children.unshift({
        id: 'admin',
        restart: 'permanent',
        shutdown: 2_000,
        start: async () => {
          const server = new AdminServer({
            host: admin.host ?? '127.0.0.1',
            port: this.admin?.port ?? admin.port,
            metrics: async () => ({ text: await this.metrics.render(), contentType: this.metrics.contentType }),
            health: () => this.detailedHealth(),
            domains: nodeDomains,
          })
          await server.listen()
          this.admin = server
          return server
        },
      })
    }
    this.root = new Supervisor({ id: 'root', flags: { strategy: 'one_for_one', intensity: 3, periodMs: 60_000 }, children, onEvent: onSupervisorEvent })
    this.root.onExit((reason) => {
      if (reason.type !== 'error' || this.closing !== undefined) return
      this.failure = { error: reason.error }
      this.log.fatal({ err: reason.error }, 'the root supervisor gave up: the node stops')
      this.stopProbes()
      // Nothing will run what is still queued: answer it rather than leave callers waiting.
      this.pool.shutDown()
      for (const listener of this.failureListeners.splice(0)) listener(this.failure)
    })
    if (options.lastResort !== false) this.releaseLastResort = installLastResort(this.log)
  }

  /** Start a node: sandbox, verifier, peers, then one listener per circle (and the admin listener). */
  static async start(options: CircleNodeOptions): Promise<CircleNode> {
    const log = options.logger
    // A standby serves its admin listener while it waits (health: "standby"), then hands its port on.
    let holder: DatabaseLockHolder | undefined
    const standby = options.lock === 'wait' && options.admin !== undefined ? await startStandbyAdmin(options.admin, parseDomains(options.domains, 'domains', (field, rule) => {
            throw circlesError('INVALID_OPTION', `options.${field} ${rule}`)
          }), options.dbPath, () => holder) : undefined
    let dbLock: DatabaseLock
    try {
      dbLock = await acquireDatabaseLock(options.dbPath, {
        wait: options.lock === 'wait',
        onWaiting: (found) => {
          holder = found
          log?.info({ db_path: options.dbPath, holder_pid: found.pid ?? null, admin: standby?.url ?? null }, 'waiting for the database lock (standby)')
        },
      })
    } finally {
      await standby?.stop()
    }
    if (standby !== undefined) options = { ...options, admin: { ...options.admin!, port: standby.port } }
    let node: CircleNode
    try {
      node = new CircleNode(options, dbLock)
    } catch (error) {
      await dbLock.release()
      throw error
    }
    try {
      await node.root.start()
    } catch (error) {
      node.releaseLastResort?.()
      await dbLock.release()
      throw error
    }
    dbLock.onLost((reason) => {
      node.log.fatal({ db_path: options.dbPath, reason }, 'the database lock was lost: stopping')
      void node.close()
    })
    for (const circle of options.circles) {
      const server = node.servers.get(circle.name)!()
      node.served.push({ name: circle.name, publicKey: circle.keyPair.publicKey, url: server.url, port: server.port })
    }
    node.startProbes(options.dbPath)
    return node
  }

  /**
   * Run a script in any context: one this node hosts runs here; clustered, one another node owns
   * is queued to it through Redis (UNKNOWN_CIRCLE when no node serves it). Returns what a client
   * reads, or throws the coded error it would get.
   *
   * @example
   * const { output } = await node.play(circleKey, { caller: '', script: 'list_data()' })
   */
  async play(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayResult> {
    const { outcome, ...receipt } = await this.route(parsePublicKey(pubkey), request)
    return playResultOf(outcome, receipt)
  }

  private route(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayOutcome> {
    if (this.peerHost.has(pubkey) || this.bridge === undefined) return this.peerHost.dispatch(pubkey, request)
    return this.bridge.dispatch(pubkey, request)
  }

  /** The Redis bridge, when the node is clustered. */
  get redis(): RedisBridge | undefined {
    return this.bridge
  }

  private clusterInfo(): { clustered: boolean; node_id?: string; redis?: 'connected' | 'unreachable' } {
    if (this.bridge === undefined) return { clustered: false }
    return { clustered: true, node_id: this.bridge.nodeId, redis: this.bridge.connected ? 'connected' : 'unreachable' }
  }

  /** The peer contexts of this node (spawnPeer, play, …). */
  get peers(): PeerHost {
    return this.peerHost
  }

  get sandbox(): SandboxPool {
    return this.pool
  }

  get verifier(): Verifier {
    return this.verifierInstance
  }

  /** The admin listener's URL, when the node has one. */
  get adminUrl(): string | undefined {
    return this.admin?.url
  }

  /** The supervision tree as it runs now. */
  tree(): SupervisorTree {
    return this.root.tree()
  }

  /**
   * Called once if the node stops on its own: its root supervisor gave up, or it cannot serve
   * through its Redis (CLUSTER_SECRET_MISMATCH; then once it has closed).
   */
  onFailure(listener: (failure: NodeFailure) => void): void {
    if (this.failure !== undefined) listener(this.failure)
    else this.failureListeners.push(listener)
  }

  /** A part of the node found it cannot go on (its Redis holds another cluster secret's check): close, then report it. */
  private fatal(error: Error): void {
    if (this.closing !== undefined) return
    this.log.fatal({ err: error.message }, 'the node cannot serve: it stops')
    void this.close().then(() => {
      this.failure = { error }
      for (const listener of this.failureListeners.splice(0)) listener(this.failure)
    })
  }

  /** Drain and stop: listeners stop accepting and finish in-flight work, then peers, verifier, sandbox. */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    const started = performance.now()
    const inFlight = () => ({ connections: this.metricsConnections(), tasks: this.peerHost?.load ?? 0 })
    this.log.info(inFlight(), 'draining: no new connections; finishing requests in flight')
    for (const current of this.servers.values()) current().stopAccepting()
    this.stopProbes()
    // Progress while a drain lasts (it is bounded by the drain timeout): what is still open.
    const progress = setInterval(() => this.log.info({ ...inFlight(), elapsed_ms: Math.round(performance.now() - started) }, 'draining: still in flight'), DRAIN_PROGRESS_INTERVAL_MS)
    progress.unref()
    try {
      await this.root.stop()
    } finally {
      clearInterval(progress)
    }
    this.pool.shutDown()
    await this.dbLock.release()
    this.releaseLastResort?.()
    this.log.info({ drain_ms: Math.round(performance.now() - started) }, 'stopped')
  }

  private metricsConnections(): number {
    let n = 0
    for (const current of this.servers.values()) n += current().openConnections
    return n
  }

  private onSupervisorEvent(event: SupervisorEvent): void {
    const where = { supervisor: event.supervisor, child: event.id }
    switch (event.type) {
      case 'child_started':
        if (event.supervisor === 'sandbox') {
          const index = Number(event.id.slice('host-'.length))
          this.log.info({ ...where, host_pid: this.pool.pids[index], restarts: event.restarts }, 'sandbox host started')
        } else if (event.supervisor !== 'peers' && !event.id.startsWith('conn-')) {
          this.log.debug(where, 'started')
        }
        return
      case 'child_exited':
        if (event.reason.type === 'error') {
          this.log.warn({ ...where, reason: event.reason.error.message, blame: event.reason.blame ?? 'infrastructure' }, 'child exited')
        }
        return
      case 'child_restarted':
        this.metrics.supervisorRestart(event.supervisor, event.id)
        this.log.warn({ ...where, counted: event.counted }, 'restarting child')
        return
      case 'escalated':
        this.metrics.supervisorEscalation(event.supervisor)
        this.log.error(
          { ...where, reason: event.reason.type === 'error' ? event.reason.error.message : 'normal exit' },
          'restart intensity exceeded: the supervisor gives up',
        )
        return
    }
  }

  /** Authentication failures are logged with the address, at most 10 a second (the rest counted). */
  private logAuthFailure(address: string, code: string): void {
    const now = performance.now()
    if (now - this.authLog.windowStart > 1_000) {
      if (this.authLog.suppressed > 0) this.log.warn({ suppressed: this.authLog.suppressed }, 'authentication failures not logged (over 10 a second)')
      this.authLog.windowStart = now
      this.authLog.logged = 0
      this.authLog.suppressed = 0
    }
    if (this.authLog.logged++ < 10) this.log.warn({ remote: address, code }, 'authentication failed')
    else this.authLog.suppressed++
  }

  /** Probe every sandbox host with a trivial run now and then: `/healthz` reads the result, never triggers a run. */
  private startProbes(dbPath: string): void {
    const probeKey = `probe-${process.pid}`
    const limits = { ...DEFAULT_LIMITS, timeoutMs: 5_000, cpuMs: 5_000 }
    const now = performance.now()
    for (let host = 0; host < this.pool.size; host++) {
      const ref = this.pool.register(
        { circle: `${probeKey}-${host}`, root: join(dbPath, '.probe'), dbPathLabel: '', limits, quota: DEFAULT_QUOTA },
        undefined,
        host,
      )
      this.probes.push({ ref, lastOk: now, pending: false })
    }
    const probe = () => {
      for (const p of this.probes) {
        // One probe per host at a time: a host busy with a long run is not sent a pile of them.
        if (p.pending) continue
        p.pending = true
        void this.pool.run(p.ref, { script: PROBE_SCRIPT, caller: '', canWrite: false, canCall: false, timeoutMs: 5_000 }).then((outcome) => {
          p.pending = false
          if (outcome.code === null) p.lastOk = performance.now()
        })
      }
    }
    probe()
    this.probeTimer = setInterval(probe, this.probeIntervalMs)
    this.probeTimer.unref()
  }

  private stopProbes(): void {
    clearInterval(this.probeTimer)
  }

  /** Parts failing now: a supervisor not running, a host down, a probe not answered lately. */
  private failing(): string[] {
    const failing: string[] = []
    const tree = this.root.tree()
    const walk = (node: SupervisorTree) => {
      if (node.state !== 'running') failing.push(node.id)
      for (const child of node.children) {
        if (child.type === 'supervisor') walk(child)
        else if (child.status !== 'running') failing.push(`${node.id}/${child.id}`)
      }
    }
    walk(tree)
    const now = performance.now()
    for (const [i, p] of this.probes.entries()) {
      if (now - p.lastOk > 3 * this.probeIntervalMs) failing.push(`sandbox/host-${i} (probe)`)
    }
    return failing
  }

  private publicHealth(): PublicHealth {
    if (this.closing !== undefined) return { status: 'draining' }
    const failing = this.failing()
    if (failing.length > 0) return { status: 'unavailable', failing }
    // Redis only limits work between nodes: local circles are served all the same.
    if (this.bridge !== undefined && !this.bridge.connected) return { status: 'degraded', failing: ['redis'] }
    return { status: 'ok' }
  }

  private detailedHealth(): { status: string } & Record<string, unknown> {
    const publicHealth = this.publicHealth()
    const now = performance.now()
    return {
      ...publicHealth,
      version: VERSION,
      pid: process.pid,
      tree: this.root.tree(),
      hosts: this.pool.stats.map((h, i) => ({ ...h, last_probe_ok_ms_ago: Math.round(now - (this.probes[i]?.lastOk ?? now)) })),
      peers: this.peerHost?.size,
      quarantined: this.load.quarantined,
      cluster: this.clusterInfo(),
      ...(this.bridge === undefined ? {} : { cross_node: { ...this.bridge.counters, ...this.bridge.depth } }),
    }
  }

  private describeLimits(pubkey: PublicKeyHex): Record<string, number> {
    const limits = this.peerHost.ref(pubkey)?.limits
    return {
      max_frame_bytes: this.limits.maxFrameBytes,
      max_batch_entries: this.limits.maxBatchEntries,
      max_frame_depth: this.limits.maxFrameDepth,
      max_frame_values: this.limits.maxFrameValues,
      max_batch_answer_bytes: this.limits.maxBatchAnswerBytes,
      max_script_bytes: this.limits.maxScriptBytes,
      max_in_flight_per_connection: this.limits.maxInFlight,
      max_buffered_bytes_per_connection: this.limits.maxBufferedBytes,
      max_buffered_bytes_per_address: this.limits.maxBufferedBytesPerAddress,
      nonce_ttl_ms: this.limits.nonceTtlMs,
      idle_timeout_ms: this.limits.idleTimeoutMs,
      max_subscriptions_per_connection: this.limits.maxSubscriptions,
      ...(limits === undefined
        ? {}
        : {
            script_timeout_ms: limits.timeoutMs,
            script_cpu_ms: limits.cpuMs,
            script_memory_mb: limits.memoryMb,
            max_output_bytes: limits.maxOutputBytes,
            max_log_bytes: limits.maxLogBytes,
            max_log_lines: limits.maxLogLines,
            max_emits: limits.maxEmits,
            max_emit_bytes: limits.maxEmitBytes,
            max_notify_value_bytes: limits.maxNotifyValueBytes,
          }),
    }
  }
}

import { DEFAULTS, positiveIntegerOption } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { Faults } from '../faults/index.js'
import { parsePublicKey, type PublicKeyHex } from '../identity/index.js'
import { ClientAddresses, LoadLimits, SendBudget, SYSTEM_CLOCK } from '../limits/index.js'
import { createLogger, type Logger } from '../log/index.js'
import type { NodeMetrics } from '../metrics/index.js'
import type { PeerHost, PeerHostChild, PlayRequest } from '../actors/peer/index.js'
import { playResultOf, type PlayResult } from '../protocol/index.js'
import { SandboxPool } from '../sandbox/index.js'
import type { RedisBridge } from '../queue/index.js'
import type { AdminServer, CircleServer } from '../server/index.js'
import { Supervisor, type SupervisorTree } from '../supervisor/index.js'
import type { DatabaseLock } from '../storage/index.js'
import type { Verifier } from '../verifier/index.js'
import { nodeChildren } from './children.js'
import type { ClusterChild } from './cluster-child.js'
import { NodeHealth } from './health.js'
import { installLastResort } from './last-resort.js'
import { nodeMetrics } from './metric-sources.js'
import { authFailureLog, sandboxHooks, supervisorEvents } from './node-log.js'
import { checkRedisOptions, gatewayLimits, type CircleNodeOptions, type NodeFailure, type ServedCircle } from './node-options.js'
import { Routing } from './routing.js'
import { acquireNodeLock } from './standby-admin.js'

export type { CircleNodeOptions, NodeCircle, NodeFailure, NodeRedisOptions, ServedCircle } from './node-options.js'

/** How often a drain in progress logs what is still open. */
const DRAIN_PROGRESS_INTERVAL_MS = 1_000

/**
 * A Circle node: one process hosting many peer contexts, under one supervision tree. The node is
 * its root supervisor (one_for_one, 3 restarts / 60 s) over a table of child specs
 * (src/node/children.ts): admin, sandbox, verifier, peers, redis, then one gateway per port. They
 * start in this order and stop in reverse (docs/operations.md, "Supervision tree", draws the
 * tree, and tests it against {@link tree}). The node finds its children through the root supervisor: a restarted verifier, peer host or
 * bridge serves the connections already open. Health is in health.ts, routing in routing.ts.
 * When the root gives up, the node logs why and reports it through {@link onFailure}; the
 * command line then exits non-zero.
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
  private readonly pool: SandboxPool
  private readonly health: NodeHealth
  private readonly routing: Routing
  private readonly circles: readonly string[]
  private closing: Promise<void> | undefined
  private failure: NodeFailure | undefined
  private readonly failureListeners: ((failure: NodeFailure) => void)[] = []
  private releaseLastResort: (() => void) | undefined

  private constructor(options: CircleNodeOptions, private readonly dbLock: DatabaseLock) {
    const limits = gatewayLimits(options)
    const probeIntervalMs = positiveIntegerOption(options.probeIntervalMs, DEFAULTS.PROBE_INTERVAL_MS, 'probeIntervalMs')
    checkRedisOptions(options.redis)
    this.circles = options.circles.map((circle) => circle.name)
    // Embedded without a logger, a node says only what needs attention, and on stderr.
    const log = (this.log = options.logger ?? createLogger({ level: process.env['CIRCLES_LOG_LEVEL'] ?? 'warn', destination: process.stderr }))
    const faults = options.faults instanceof Faults ? options.faults : new Faults(options.faults)
    const clock = options.clock ?? SYSTEM_CLOCK
    this.load = new LoadLimits(options.limits, clock)
    this.sendBudget = new SendBudget({
      perSocket: limits.maxBufferedBytes,
      perAddress: limits.maxBufferedBytesPerAddress,
      perNode: limits.maxBufferedBytesPerNode,
      appliesTo: (origin) => this.load.applies(origin),
    })
    const onSupervisorEvent = supervisorEvents(log, () => this.metrics, (index) => this.pool.pids[index])
    this.pool = new SandboxPool({
      ...options.sandbox,
      faults: faults.names,
      ...(dbLock.fd === undefined ? {} : { inheritFd: dbLock.fd }),
      hooks: sandboxHooks(log, this.load, () => this.metrics, onSupervisorEvent),
    })
    const peers = () => this.child<PeerHostChild>('peers')?.host
    const cluster = () => this.child<ClusterChild>('redis')
    const verifier = () => this.child<Verifier>('verifier')
    this.metrics = nodeMetrics({ connections: () => this.connections(), peers, verifier, cluster, pool: this.pool, load: this.load, sendBudget: this.sendBudget })
    this.health = new NodeHealth({ tree: () => this.root.tree(), pool: this.pool, peers, bridge: () => cluster()?.bridge, load: this.load, draining: () => this.closing !== undefined, probeIntervalMs })
    this.routing = new Routing({ peers, cluster, clustered: options.redis !== undefined })
    const children = nodeChildren({
      ...{ options, limits, log, faults, clock, load: this.load, sendBudget: this.sendBudget, metrics: this.metrics, pool: this.pool },
      ...{ health: this.health, routing: this.routing, onSupervisorEvent, cluster, clients: new ClientAddresses(options.trustedProxies) },
      logAuthFailure: authFailureLog(log),
      peers: () => this.peers,
      verifier: () => this.verifier,
      fatal: (error) => this.fatal(error),
    })
    this.root = new Supervisor({ id: 'root', flags: { strategy: 'one_for_one', intensity: 3, periodMs: 60_000 }, children, onEvent: onSupervisorEvent })
    this.root.onExit((reason) => {
      if (reason.type !== 'error' || this.closing !== undefined) return
      this.failure = { error: reason.error }
      this.log.fatal({ err: reason.error }, 'the root supervisor gave up: the node stops')
      this.health.stopProbes()
      // The pool's queues are the node's, beyond any one sandbox child: with the root given up
      // nothing will start hosts again, so what is still queued is answered rather than left waiting.
      this.pool.shutDown()
      for (const listener of this.failureListeners.splice(0)) listener(this.failure)
    })
    if (options.lastResort !== false) this.releaseLastResort = installLastResort(this.log)
  }

  /** Start a node: sandbox, verifier, peers, then one listener per circle (and the admin listener). */
  static async start(given: CircleNodeOptions): Promise<CircleNode> {
    // A standby serves its admin listener while it waits (health: "standby"), then hands its port on.
    const { dbLock, options } = await acquireNodeLock(given)
    let node: CircleNode | undefined
    try {
      node = new CircleNode(options, dbLock)
      await node.root.start()
    } catch (error) {
      node?.releaseLastResort?.()
      await dbLock.release()
      throw error
    }
    dbLock.onLost((reason) => {
      node.log.fatal({ db_path: options.dbPath, reason }, 'the database lock was lost: stopping')
      void node.close()
    })
    for (const circle of options.circles) {
      const server = node.listener(circle.name)!
      node.served.push({ name: circle.name, publicKey: circle.keyPair.publicKey, url: server.url, port: server.port })
    }
    node.health.startProbes(options.dbPath)
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
    const { outcome, ...receipt } = await this.routing.play(parsePublicKey(pubkey), request)
    return playResultOf(outcome, receipt)
  }

  /** A running child of the root, as its supervisor holds it (none while it restarts). */
  private child<T>(id: string): T | undefined {
    return this.root.child(id) as T | undefined
  }

  /** A port's current listener (none while it restarts). */
  private listener(name: string): CircleServer | undefined {
    return this.child<Supervisor>(`gateway:${name}`)?.child('listener') as CircleServer | undefined
  }

  /** The Redis bridge, when the node is clustered (and its bridge runs). */
  get redis(): RedisBridge | undefined {
    return this.child<ClusterChild>('redis')?.bridge
  }

  /** The peer contexts of this node (spawnPeer, play, …). */
  get peers(): PeerHost {
    const peers = this.child<PeerHostChild>('peers')?.host
    if (peers === undefined) throw circlesError('SHUTTING_DOWN', 'The peer host is not running')
    return peers
  }

  /** The sandbox pool (its hosts are the `sandbox` child's). */
  get sandbox(): SandboxPool {
    return this.pool
  }

  get verifier(): Verifier {
    const verifier = this.child<Verifier>('verifier')
    if (verifier === undefined) throw circlesError('UNAVAILABLE', 'The signature verifier is restarting')
    return verifier
  }

  /** The admin listener's URL, when the node has one. */
  get adminUrl(): string | undefined {
    return this.child<AdminServer>('admin')?.url
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
    const inFlight = () => ({ connections: this.connections(), tasks: this.child<PeerHostChild>('peers')?.host.load ?? 0 })
    this.log.info(inFlight(), 'draining: no new connections; finishing requests in flight')
    for (const name of this.circles) this.listener(name)?.stopAccepting()
    this.health.stopProbes()
    // Progress while a drain lasts (it is bounded by the drain timeout): what is still open.
    const progress = setInterval(() => this.log.info({ ...inFlight(), elapsed_ms: Math.round(performance.now() - started) }, 'draining: still in flight'), DRAIN_PROGRESS_INTERVAL_MS)
    progress.unref()
    try {
      // Every child stops in reverse order; the sandbox child answers what is still queued.
      await this.root.stop()
    } finally {
      clearInterval(progress)
    }
    await this.dbLock.release()
    this.releaseLastResort?.()
    this.log.info({ drain_ms: Math.round(performance.now() - started) }, 'stopped')
  }

  private connections(): number {
    let n = 0
    for (const name of this.circles) n += this.listener(name)?.openConnections ?? 0
    return n
  }
}

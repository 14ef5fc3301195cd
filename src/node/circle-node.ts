import { DEFAULTS, VERSION, positiveIntegerOption } from '../config/index.js'
import type { KeyPair, PublicKeyHex } from '../identity/index.js'
import { Metrics } from '../metrics/index.js'
import { PeerHost, type PeerOverrides } from '../actors/peer/index.js'
import type { GatewayLimits, GatewayServices } from '../actors/gateway/index.js'
import type { Policy } from '../policy/index.js'
import { SandboxPool, type SandboxPoolOptions } from '../sandbox/index.js'
import { CircleServer, type TlsCredentials } from '../server/index.js'
import { Supervisor, handleFor, type ChildSpec, type SupervisorEvent } from '../supervisor/index.js'
import { Verifier } from '../verifier/index.js'

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
}

export interface CircleNodeOptions {
  readonly dbPath: string
  readonly circles: readonly NodeCircle[]
  /** Gateway limits; defaults from DEFAULTS. */
  readonly gateway?: Partial<GatewayLimits>
  /** Defaults for every peer context (limits, quota, mailbox, passivation). */
  readonly peers?: PeerOverrides
  readonly sandbox?: SandboxPoolOptions
  /** Register every namespace already under `dbPath` (default true). */
  readonly adoptExisting?: boolean
  readonly drainTimeoutMs?: number
  /** Where supervisor events and warnings go (default: stderr). */
  readonly log?: (line: string) => void
}

export interface ServedCircle {
  readonly name: string
  readonly publicKey: PublicKeyHex
  readonly url: string
  readonly port: number
}

/**
 * A Circle node: one process hosting many peer contexts. Its root supervisor (rest_for_one)
 * owns, in start order, the sandbox pool, the signature verifier, the peer host and one gateway
 * listener per circle port; stopping it drains them in reverse order.
 *
 * @example
 * const node = await CircleNode.start({ dbPath: './data', circles: [{ name: 'demo', keyPair, host: '127.0.0.1', port: 8090 }] })
 * const peer = await node.peers.spawnPeer({ pubkey: someKey })
 * await node.close()
 */
export class CircleNode {
  readonly metrics = new Metrics()
  readonly served: ServedCircle[] = []
  private readonly root: Supervisor
  private readonly limits: GatewayLimits
  private pool!: SandboxPool
  private verifier!: Verifier
  private peerHost!: PeerHost
  private readonly servers = new Map<string, CircleServer>()
  private closing: Promise<void> | undefined

  private constructor(options: CircleNodeOptions) {
    this.limits = {
      maxFrameBytes: DEFAULTS.MAX_FRAME_BYTES,
      maxBatchEntries: DEFAULTS.MAX_BATCH_ENTRIES,
      maxScriptBytes: DEFAULTS.MAX_SCRIPT_BYTES,
      maxInFlight: DEFAULTS.MAX_IN_FLIGHT_PER_SOCKET,
      maxBufferedBytes: DEFAULTS.MAX_BUFFERED_BYTES,
      nonceTtlMs: DEFAULTS.NONCE_TTL_MS,
      idleTimeoutMs: DEFAULTS.IDLE_TIMEOUT_MS,
      ...options.gateway,
    }
    for (const [key, value] of Object.entries(this.limits)) positiveIntegerOption(value, 1, `gateway.${key}`)
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
    // The listeners read the current services: a restarted child replaces its instance.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this
    const services: GatewayServices = {
      limits: this.limits,
      metrics: this.metrics,
      get peers() {
        return node.peerHost
      },
      get verifier() {
        return node.verifier
      },
    }
    const children: ChildSpec[] = [
      {
        id: 'sandbox',
        restart: 'permanent',
        shutdown: 10_000,
        start: async () => {
          this.pool = new SandboxPool(options.sandbox ?? {})
          await this.pool.ready()
          return handleFor(() => this.pool.close())
        },
      },
      {
        id: 'verifier',
        restart: 'permanent',
        shutdown: 5_000,
        start: async () => {
          this.verifier = new Verifier()
          return handleFor(() => this.verifier.close())
        },
      },
      {
        id: 'peers',
        restart: 'permanent',
        shutdown: options.drainTimeoutMs ?? DEFAULTS.DRAIN_TIMEOUT_MS,
        start: async () => {
          this.peerHost = new PeerHost({ dbPath: options.dbPath, pool: this.pool, ...(options.peers ? { defaults: options.peers } : {}) })
          for (const circle of options.circles) {
            await this.peerHost.spawnPeer({ pubkey: circle.keyPair.publicKey, policy: circle.policy, ...circle.overrides })
          }
          if (options.adoptExisting !== false) await this.peerHost.adoptExisting()
          return handleFor(() => this.peerHost.stop())
        },
      },
      ...options.circles.map(
        (circle): ChildSpec => ({
          id: `gateway:${circle.name}`,
          restart: 'permanent',
          shutdown: (options.drainTimeoutMs ?? DEFAULTS.DRAIN_TIMEOUT_MS) + 2_000,
          start: async () => {
            const server = new CircleServer({
              name: circle.name,
              circle: circle.keyPair.publicKey,
              host: circle.host,
              port: this.servers.get(circle.name)?.port ?? circle.port,
              services,
              version: VERSION,
              describeLimits: () => this.describeLimits(circle.keyPair.publicKey),
              ...(circle.tls === undefined ? {} : { tls: circle.tls }),
            })
            await server.listen()
            this.servers.set(circle.name, server)
            return handleFor(() => server.drain(options.drainTimeoutMs ?? DEFAULTS.DRAIN_TIMEOUT_MS))
          },
        }),
      ),
    ]
    this.root = new Supervisor({
      flags: { strategy: 'rest_for_one', intensity: 5, periodMs: 60_000 },
      children,
      onEvent: (event: SupervisorEvent) => log(`circles: supervisor: ${event.type} ${event.id}`),
    })
    this.root.onExit((reason) => {
      if (reason.type === 'error') log(`circles: root supervisor gave up: ${reason.error.message}`)
    })
    this.metrics.gauge('circles_connections_open', 'Open WebSocket connections', () => {
      let n = 0
      for (const s of this.servers.values()) n += s.openConnections
      return n
    })
    this.metrics.gauge('circles_peers_registered', 'Peer contexts hosted by this node', () => this.peerHost?.size.registered ?? 0)
    this.metrics.gauge('circles_peers_active', 'Peer contexts with a live actor (not passivated)', () => this.peerHost?.size.active ?? 0)
    this.metrics.gauge('circles_tasks_queued', 'Script runs queued or running across contexts', () => this.peerHost?.load ?? 0)
    this.metrics.gauge('circles_sandbox_runs_total', 'Script runs handed to the sandbox', () => this.pool?.counters.runs ?? 0)
    this.metrics.gauge('circles_sandbox_handoffs_total', 'Messages to sandbox hosts (each carries the batches of one event-loop turn)', () => this.pool?.counters.tasks ?? 0)
    this.metrics.gauge('circles_sandbox_batches_total', 'Context batches handed to the sandbox', () => this.pool?.counters.batches ?? 0)
    this.metrics.gauge('circles_sandbox_crashes_total', 'Sandbox hosts or threads that died with work in flight', () => this.pool?.counters.crashes ?? 0)
    this.metrics.gauge('circles_verifier_queued', 'Signature checks waiting or running', () => this.verifier?.queued ?? 0)
  }

  /** Start a node: sandbox, verifier, peers, then one listener per circle. */
  static async start(options: CircleNodeOptions): Promise<CircleNode> {
    const node = new CircleNode(options)
    await node.root.start()
    for (const circle of options.circles) {
      const server = node.servers.get(circle.name)!
      node.served.push({ name: circle.name, publicKey: circle.keyPair.publicKey, url: server.url, port: server.port })
    }
    return node
  }

  /** The peer contexts of this node (spawnPeer, play, …). */
  get peers(): PeerHost {
    return this.peerHost
  }

  get sandbox(): SandboxPool {
    return this.pool
  }

  /** Drain and stop: listeners stop accepting and finish in-flight work, then peers, verifier, sandbox. */
  close(): Promise<void> {
    this.closing ??= this.root.stop()
    return this.closing
  }

  private describeLimits(pubkey: PublicKeyHex): Record<string, number> {
    const limits = this.peerHost.ref(pubkey)?.limits
    return {
      max_frame_bytes: this.limits.maxFrameBytes,
      max_batch_entries: this.limits.maxBatchEntries,
      max_script_bytes: this.limits.maxScriptBytes,
      max_in_flight_per_connection: this.limits.maxInFlight,
      max_buffered_bytes_per_connection: this.limits.maxBufferedBytes,
      nonce_ttl_ms: this.limits.nonceTtlMs,
      idle_timeout_ms: this.limits.idleTimeoutMs,
      ...(limits === undefined
        ? {}
        : {
            script_timeout_ms: limits.timeoutMs,
            script_cpu_ms: limits.cpuMs,
            script_memory_mb: limits.memoryMb,
            max_output_bytes: limits.maxOutputBytes,
            max_log_bytes: limits.maxLogBytes,
          }),
    }
  }
}

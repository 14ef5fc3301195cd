import { DEFAULTS, VERSION, positiveIntegerOption } from '../config/index.js'
import type { Faults } from '../faults/index.js'
import type { ClientAddresses, Clock, LoadLimits, SendBudget } from '../limits/index.js'
import type { Logger } from '../log/index.js'
import type { NodeMetrics } from '../metrics/index.js'
import { PeerHost, type PeerHostChild } from '../actors/peer/index.js'
import { AddressSubscriptions } from '../live/index.js'
import type { GatewayLimits, GatewayServices } from '../actors/gateway/index.js'
import type { SandboxPool } from '../sandbox/index.js'
import { callThrough } from '../queue/index.js'
import { AdminServer, CircleServer, parseDomains } from '../server/index.js'
import type { ChildSpec, SupervisorEvent } from '../supervisor/index.js'
import { Verifier } from '../verifier/index.js'
import { ClusterChild } from './cluster-child.js'
import type { NodeHealth } from './health.js'
import { circleNames, describeLimits, optionFail, type CircleNodeOptions } from './node-options.js'
import type { Routing } from './routing.js'

/** What the node's children are made of: the node's own parts, and where to find its other children. */
export interface NodeParts {
  readonly options: CircleNodeOptions
  readonly limits: GatewayLimits
  readonly log: Logger
  readonly faults: Faults
  readonly load: LoadLimits
  readonly clients: ClientAddresses
  readonly sendBudget: SendBudget
  readonly clock: Clock
  readonly metrics: NodeMetrics
  readonly pool: SandboxPool
  readonly health: NodeHealth
  readonly routing: Routing
  readonly onSupervisorEvent: (event: SupervisorEvent) => void
  readonly logAuthFailure: (address: string, code: string) => void
  /** The running children, found through the root supervisor (a restarted child is found). */
  readonly peers: () => PeerHost
  readonly verifier: () => Verifier
  readonly cluster: () => ClusterChild | undefined
  /** A part found it cannot go on (Redis holds another cluster secret's check): the node stops. */
  readonly fatal: (error: Error) => void
}

/**
 * The node's supervision tree as data: one spec per child of the root, in start order (they stop
 * in reverse). docs/operations.md, "Supervision tree", draws it; test/readme.test.ts checks it.
 */
export function nodeChildren(parts: NodeParts): ChildSpec[] {
  const { options, limits, log, pool, onSupervisorEvent } = parts
  const drainTimeoutMs = limits.drainTimeoutMs
  const services = gatewayServices(parts)
  const names = circleNames(options)
  const children: ChildSpec[] = []
  const admin = options.admin
  if (admin !== undefined) {
    // First in, last out: the admin listener comes up before the rest (its health shows the
    // start) and is stopped after everything else, so /metrics and /healthz report a drain to its end.
    let port = admin.port
    children.push({
      id: 'admin',
      restart: 'permanent',
      shutdown: 2_000,
      start: async () => {
        const server = new AdminServer({
          host: admin.host ?? '127.0.0.1',
          port,
          metrics: async () => ({ text: await parts.metrics.render(), contentType: parts.metrics.contentType }),
          health: () => parts.health.detailed(),
          domains: parseDomains(options.domains, 'domains', optionFail),
        })
        await server.listen()
        port = server.port
        return server
      },
    })
  }
  children.push(
    { id: 'sandbox', type: 'supervisor', restart: 'permanent', shutdown: drainTimeoutMs + 6_000, start: () => pool.startChild() },
    { id: 'verifier', restart: 'permanent', shutdown: 5_000, start: () => new Verifier() },
    { id: 'peers', type: 'supervisor', restart: 'permanent', shutdown: drainTimeoutMs + 1_000, start: () => startPeers(parts) },
  )
  const redis = options.redis
  if (redis !== undefined) {
    children.push({
      id: 'redis',
      restart: 'permanent',
      shutdown: drainTimeoutMs + 2_000,
      start: () => new ClusterChild(redis, log, parts.peers, parts.faults, (error) => parts.fatal(error)),
    })
  }
  for (const circle of options.circles) {
    let port = circle.port
    children.push({
      id: `gateway:${circle.name}`,
      type: 'supervisor',
      restart: 'permanent',
      shutdown: drainTimeoutMs + 4_000,
      start: async () => {
        const { supervisor, current } = await CircleServer.start({
          name: circle.name,
          circle: circle.keyPair.publicKey,
          host: circle.host,
          // A restarted port binds the port it had.
          port,
          services,
          version: VERSION,
          describeLimits: () => describeLimits(limits, parts.peers().ref(circle.keyPair.publicKey)?.limits),
          health: () => parts.health.public(),
          ...names.get(circle.name)!,
          onSupervisorEvent,
          ...(circle.tls === undefined ? {} : { tls: circle.tls }),
        })
        port = current().port
        return supervisor
      },
    })
  }
  return children
}

/** The peer host with the node's contexts registered: the circles, the further contexts, those on disk. */
async function startPeers(parts: NodeParts): Promise<PeerHostChild> {
  const { options, limits, load, metrics } = parts
  const peers = new PeerHost({
    dbPath: options.dbPath,
    pool: parts.pool,
    shutdownMs: limits.drainTimeoutMs,
    onSupervisorEvent: parts.onSupervisorEvent,
    onRegistered: (pubkey) => parts.cluster()?.bridge.claim(pubkey),
    live: (({ maxSubscriptionsPerAddress: _, ...live }) => live)(options.live ?? {}),
    onPolicyChanged: (pubkey) => {
      const cluster = parts.cluster()
      cluster?.relay.policyChanged(pubkey)
      return cluster?.bridge.advertise(pubkey)
    },
    // A script a run passes to `call` is held to the size of a play's.
    defaults: { ...options.peers, limits: { maxScriptBytes: limits.maxScriptBytes, ...options.peers?.limits } },
    calls: {
      admit: (call) => {
        const refused = load.call(call.caller, call.origin)
        if (refused !== undefined) metrics.limited((refused.details as { limit: string }).limit)
        return refused
      },
      settled: (outcome) => metrics.call(outcome),
      // A callee another node owns is reached through Redis, as a client's play is.
      remote: (target, request) => {
        const bridge = parts.cluster()?.bridge
        return bridge === undefined ? undefined : callThrough(bridge, target, request)
      },
    },
  })
  const child = peers.asChild()
  try {
    for (const circle of options.circles) {
      await peers.spawnPeer({ pubkey: circle.keyPair.publicKey, policy: circle.policy, ...circle.overrides })
    }
    for (const pubkey of options.contexts ?? []) await peers.spawnPeer({ pubkey })
    if (options.adoptExisting !== false) await peers.adoptExisting()
  } catch (error) {
    child.kill()
    throw error
  }
  return child
}

/** What every connection of every port uses: the node's limits and budgets, routing, the current children. */
function gatewayServices(parts: NodeParts): GatewayServices {
  const { routing } = parts
  return {
    limits: parts.limits,
    subscriptions: new AddressSubscriptions(positiveIntegerOption(parts.options.live?.maxSubscriptionsPerAddress, DEFAULTS.SUBSCRIPTIONS_PER_ADDRESS, 'live.maxSubscriptionsPerAddress')),
    subscribe: (pubkey, subscriber, after) => routing.subscribe(pubkey, subscriber, after),
    metrics: parts.metrics,
    load: parts.load,
    clients: parts.clients,
    sendBudget: parts.sendBudget,
    clock: parts.clock,
    log: parts.log.child({ part: 'gateway' }),
    faults: parts.faults,
    logAuthFailure: parts.logAuthFailure,
    play: (pubkey, request) => routing.play(pubkey, request),
    reaches: (pubkey) => routing.reaches(pubkey),
    // The listeners read the current children: a restarted one replaces its instance.
    get peers() {
      return parts.peers()
    },
    get verifier() {
      return parts.verifier()
    },
  }
}

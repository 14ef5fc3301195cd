import { circlesError } from '../errors/index.js'
import type { PublicKeyHex } from '../identity/index.js'
import type { ContextSubscription, PeerHost, PlayOutcome, PlayRequest } from '../actors/peer/index.js'
import type { Position, Subscriber } from '../live/index.js'
import type { FeedRelay, RedisBridge } from '../queue/index.js'

/** Where routing finds the node's children now (through the supervisor: a restarted child is found). */
export interface RoutingChildren {
  readonly peers: () => PeerHost | undefined
  /** The bridge and its relay, when the node is clustered and the `redis` child runs. */
  readonly cluster: () => { readonly bridge: RedisBridge; readonly relay: FeedRelay } | undefined
  /** Whether the node joins others through Redis (whether or not its bridge runs this moment). */
  readonly clustered: boolean
}

/**
 * Which way a play, a subscription or a reachability question goes: a context this node hosts is
 * served here; clustered, any other is served through Redis by the node that owns it.
 */
export class Routing {
  constructor(private readonly children: RoutingChildren) {}

  private peers(): PeerHost {
    const peers = this.children.peers()
    if (peers === undefined) throw circlesError('SHUTTING_DOWN', 'The peer host is not running')
    return peers
  }

  play(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayOutcome> {
    let peers: PeerHost
    try {
      peers = this.peers()
    } catch (error) {
      return Promise.reject(error)
    }
    if (peers.has(pubkey) || !this.children.clustered) return peers.dispatch(pubkey, request)
    const bridge = this.children.cluster()?.bridge
    // Between two bridges (the last one failed), as when Redis is away: unavailable for now.
    if (bridge === undefined) return Promise.reject(circlesError('UNAVAILABLE', 'Cross-node work is unavailable: the Redis bridge is restarting', { reason: 'redis' }))
    return bridge.dispatch(pubkey, request)
  }

  subscribe(pubkey: PublicKeyHex, subscriber: Subscriber, after?: Position): ContextSubscription | Promise<ContextSubscription> {
    const peers = this.peers()
    const relay = this.children.cluster()?.relay
    // A context another node hosts is watched through Redis.
    if (!peers.has(pubkey) && relay !== undefined) return relay.subscribe(pubkey, subscriber, after)
    return peers.subscribe(pubkey, subscriber, after)
  }

  /** Whether a play for the context can be served (here, or through Redis). */
  reaches(pubkey: PublicKeyHex): boolean {
    return this.children.clustered || (this.children.peers()?.has(pubkey) ?? false)
  }
}

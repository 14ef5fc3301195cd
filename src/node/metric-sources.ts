import { NodeMetrics } from '../metrics/index.js'
import type { PeerHost } from '../actors/peer/index.js'
import type { LoadLimits, SendBudget } from '../limits/index.js'
import type { SandboxPool } from '../sandbox/index.js'
import type { Verifier } from '../verifier/index.js'
import type { ClusterChild } from './cluster-child.js'

/** Where the node's metrics read from: its children as they run now (none while one restarts). */
export interface MetricSources {
  readonly connections: () => number
  readonly peers: () => PeerHost | undefined
  readonly verifier: () => Verifier | undefined
  readonly cluster: () => ClusterChild | undefined
  readonly pool: SandboxPool
  readonly load: LoadLimits
  readonly sendBudget: SendBudget
}

export function nodeMetrics(sources: MetricSources): NodeMetrics {
  return new NodeMetrics({
    connectionsOpen: sources.connections,
    peers: () => sources.peers()?.size ?? { registered: 0, active: 0 },
    tasksQueued: () => sources.peers()?.load ?? 0,
    verifierQueued: () => sources.verifier()?.queued ?? 0,
    hosts: () => sources.pool.stats,
    quarantined: () => sources.load.quarantined,
    live: () => {
      const peers = sources.peers()
      if (peers === undefined) return { subscriptions: 0, notifications: 0, logsLost: 0 }
      // Through other nodes: the gateway's subscribers count, the owner's relays do not.
      const relay = sources.cluster()?.relay ?? { relayed: 0, subscriptions: 0, counters: { notifications: 0, relayedNotices: 0 } }
      return {
        subscriptions: peers.subscriptions - relay.relayed + relay.subscriptions,
        notifications: peers.counters.notifications - relay.counters.relayedNotices + relay.counters.notifications,
        logsLost: peers.counters.logsLost,
      }
    },
    sendWaiting: () => sources.sendBudget.bytes,
    crossNode: () => {
      const bridge = sources.cluster()?.bridge
      return bridge === undefined ? undefined : { ...bridge.counters, ...bridge.depth, connected: bridge.connected }
    },
  })
}

import { DEFAULTS } from '../config/index.js'
import type { CirclesError } from '../errors/index.js'
import type { Faults } from '../faults/index.js'
import type { Logger } from '../log/index.js'
import type { PeerHost } from '../actors/peer/index.js'
import { DEFAULT_PREFIX, FeedRelay, RedisBridge } from '../queue/index.js'
import type { ChildHandle, ExitReason } from '../supervisor/index.js'
import type { NodeRedisOptions } from './node-options.js'

/**
 * The node's `redis` child: the Redis bridge (tasks to and from other nodes) and its feed relay
 * (live updates through other nodes). A Redis outage is a state they ride out — reported as
 * `degraded` by the node's health, never an exit; the child exits with an error only when the
 * bridge's own code fails, and its supervisor starts a new one.
 */
export class ClusterChild implements ChildHandle {
  readonly bridge: RedisBridge
  readonly relay: FeedRelay

  constructor(redis: NodeRedisOptions, log: Logger, peers: () => PeerHost, faults: Faults, onFatal: (error: CirclesError) => void) {
    const prefix = redis.prefix ?? DEFAULT_PREFIX
    this.bridge = new RedisBridge({
      target: redis.target,
      prefix,
      secret: redis.secret,
      queueAllowanceMs: redis.queueAllowanceMs ?? DEFAULTS.QUEUE_ALLOWANCE_MS,
      ...(redis.queuedBytesPerAddress === undefined ? {} : { queuedBytesPerAddress: redis.queuedBytesPerAddress }),
      ...(redis.queuedBytesPerGateway === undefined ? {} : { queuedBytesPerGateway: redis.queuedBytesPerGateway }),
      log,
      peers,
      onFatal,
      faults,
    })
    this.bridge.start()
    const bridge = this.bridge
    this.relay = new FeedRelay({
      target: redis.target,
      prefix,
      secret: redis.secret,
      nodeId: bridge.nodeId,
      log: log.child({ part: 'feeds' }),
      peers,
      live: peers().liveLimits,
      onRefused: () => bridge.counters.refused++,
    })
    this.relay.start()
    this.bridge.onExit(() => this.relay.stop())
  }

  stop(): Promise<void> {
    return this.bridge.stop()
  }

  kill(): void {
    this.bridge.kill()
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.bridge.onExit(listener)
  }
}

import { Cluster, Redis } from 'ioredis'
import type { RedisTarget } from './redis-target.js'
import { COMPLETE, ENQUEUE, PUSH, RECOVER, RELEASE, TAKE } from './scripts.js'

export type Connection = Redis | Cluster

/** The scripts, as ioredis commands (numkeys first). */
export interface Scripted {
  circlesEnqueue(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesTake(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesRecover(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesComplete(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesPush(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesRelease(numkeys: number, ...args: (string | number)[]): Promise<number>
}

const SCRIPTS = {
  circlesEnqueue: ENQUEUE,
  circlesTake: TAKE,
  circlesRecover: RECOVER,
  circlesComplete: COMPLETE,
  circlesPush: PUSH,
  circlesRelease: RELEASE,
} as const satisfies Record<keyof Scripted, string>

const SCRIPT_NAMES = Object.keys(SCRIPTS)

/** Longest wait between two reconnection attempts. */
const MAX_RETRY_DELAY_MS = 1_000

/**
 * A connection to the cross-node queue's Redis (one server, or a cluster through its seed
 * nodes). The command connection fails fast while Redis is away (cross-node plays answer
 * UNAVAILABLE at once) and pipelines automatically (every command issued in one event-loop turn
 * leaves in one write); the blocking connection waits for Redis instead, and resends a read cut
 * by a reconnection.
 */
export function connect(target: RedisTarget, role: 'commands' | 'blocking'): Connection & Scripted {
  const blocking = role === 'blocking'
  const retry = (times: number) => Math.min(50 * times, MAX_RETRY_DELAY_MS)
  const common = {
    enableOfflineQueue: blocking,
    maxRetriesPerRequest: blocking ? null : 0,
    connectionName: `circles-${role}`,
  }
  const connection: Connection =
    target.type === 'single'
      ? new Redis(target.url, { ...common, retryStrategy: retry, enableAutoPipelining: !blocking })
      : new Cluster([...target.nodes], {
          enableAutoPipelining: !blocking,
          // ioredis routes an auto-pipelined script by its first argument, which for a script is
          // its key count, not a key: the pipeline lands on the wrong node and is refused
          // ("All keys in the pipeline should belong to the same slots allocation group").
          // Scripts are sent as they are issued instead, each routed by its first key.
          autoPipeliningIgnoredCommands: [...SCRIPT_NAMES],
          enableOfflineQueue: blocking,
          clusterRetryStrategy: retry,
          redisOptions: {
            ...common,
            ...(target.username === undefined ? {} : { username: target.username }),
            ...(target.password === undefined ? {} : { password: target.password }),
            ...(target.tls ? { tls: {} } : {}),
          },
        })
  for (const [name, lua] of Object.entries(SCRIPTS)) connection.defineCommand(name, { lua })
  return connection as Connection & Scripted
}

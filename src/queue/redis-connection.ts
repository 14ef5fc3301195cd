import { Cluster, Redis } from 'ioredis'
import type { RedisTarget } from './redis-target.js'
import { CHECK, COMPLETE, ENQUEUE, PUSH, RECOVER, RELEASE, TAKE } from './scripts.js'

export type Connection = Redis | Cluster

/** The scripts, as ioredis commands (numkeys first). */
export interface Scripted {
  circlesEnqueue(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesTake(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesRecover(numkeys: number, ...args: (string | number)[]): Promise<unknown>
  circlesComplete(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesPush(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesRelease(numkeys: number, ...args: (string | number)[]): Promise<number>
  circlesCheck(numkeys: number, ...args: (string | number)[]): Promise<unknown>
}

const SCRIPTS = {
  circlesEnqueue: ENQUEUE,
  circlesTake: TAKE,
  circlesRecover: RECOVER,
  circlesComplete: COMPLETE,
  circlesPush: PUSH,
  circlesRelease: RELEASE,
  circlesCheck: CHECK,
} as const satisfies Record<keyof Scripted, string>

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
          enableOfflineQueue: blocking,
          clusterRetryStrategy: retry,
          redisOptions: {
            ...common,
            ...(target.username === undefined ? {} : { username: target.username }),
            ...(target.password === undefined ? {} : { password: target.password }),
            ...(target.tls ? { tls: {} } : {}),
          },
        })
  // The scripts are sent with EVAL, not ioredis' defineCommand (EVALSHA, then EVAL on NOSCRIPT):
  // - a fallback re-sends its command after later ones that found the script cached — two
  //   batches of one context would then run out of order (seen on a fresh cluster node);
  // - ioredis routes an auto-pipelined EVALSHA of a defined command by its key count, not its
  //   first key, and a cluster refuses the pipeline; EVAL it routes by its first key.
  // EVAL costs the script's text per call (~2 KB) and a SHA1 in Redis, shared by every task of
  // an event-loop turn.
  const scripted = connection as Connection & Scripted
  for (const [name, lua] of Object.entries(SCRIPTS)) {
    Object.defineProperty(scripted, name, { value: (numkeys: number, ...args: (string | number)[]) => connection.eval(lua, numkeys, ...args) })
  }
  return scripted
}

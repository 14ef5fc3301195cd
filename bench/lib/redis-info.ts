/**
 * Figures read from a Redis server's INFO: its CPU time (`INFO cpu`: used_cpu_user + used_cpu_sys,
 * the server's own process) and its memory (`INFO memory`: used_memory) with its key count
 * (DBSIZE), so that the cross-node rows can say what Redis spent and kept per answered play.
 */
import type { Redis } from 'ioredis'

/** Value of `field` in an INFO text (NaN when absent). */
function field(info: string, name: string): number {
  const match = new RegExp(`^${name}:([^\\r\\n]+)`, 'm').exec(info)
  return match === null ? Number.NaN : Number(match[1])
}

/** CPU microseconds the Redis server has used so far (user + system, main and background threads). */
export async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  return Math.round((field(info, 'used_cpu_user') + field(info, 'used_cpu_sys')) * 1e6)
}

export interface RedisMemory {
  /** INFO memory's used_memory, bytes. */
  readonly used_memory: number
  /** Keys in the current database. */
  readonly keys: number
}

export async function redisMemory(redis: Redis): Promise<RedisMemory> {
  const info = await redis.info('memory')
  return { used_memory: field(info, 'used_memory'), keys: await redis.dbsize() }
}

/** Commands the Redis server has run so far (INFO commandstats): all of them, and the scripts (EVAL, EVALSHA, FCALL) among them. */
export async function redisCalls(redis: Redis): Promise<{ readonly all: number; readonly scripts: number }> {
  const info = await redis.info('commandstats')
  let all = 0
  let scripts = 0
  for (const match of info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    const calls = Number(match[2])
    all += calls
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(match[1]!)) scripts += calls
  }
  return { all, scripts }
}

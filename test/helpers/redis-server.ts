import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/** The shared Redis every developer machine and CI has. */
export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379'

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A unique key prefix for one test on the shared Redis. */
export function testPrefix(name: string): string {
  return `circles-test:${name}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`
}

/** Every key under `prefix` (SCAN, never KEYS). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** A client of the shared Redis whose keys under `prefix` are deleted at teardown. */
export function sharedRedis(t: { teardown(fn: () => unknown): void }, prefix: string): Redis {
  const redis = new Redis(SHARED_REDIS_URL, { lazyConnect: false })
  t.teardown(async () => {
    const keys = await keysUnder(redis, prefix)
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
    redis.disconnect()
  })
  return redis
}

export interface RedisProcess {
  readonly port: number
  readonly url: string
  readonly dir: string
  readonly child: ChildProcess
  /** Stop it (SHUTDOWN with its persistence rules, or SIGKILL) and wait for its exit. */
  stop(how?: 'shutdown' | 'kill'): Promise<void>
  /** Start it again on the same port and data directory; resolves once it accepts connections. */
  restart(): Promise<RedisProcess>
}

/**
 * A private `redis-server` on a free port, stopped at teardown. `args` are extra server options
 * (e.g. ['--appendonly', 'yes']); its data directory is a temporary one unless `dir` is given.
 */
export async function startRedis(
  t: { teardown(fn: () => unknown): void },
  args: readonly string[] = ['--save', '', '--appendonly', 'no'],
  fixed: { port?: number; dir?: string } = {},
): Promise<RedisProcess> {
  const port = fixed.port ?? (await freePort())
  const dir = fixed.dir ?? mkdtempSync(join(tmpdir(), 'circles-test-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      if (/Ready to accept connections/.test(out)) resolve()
    })
    void exited.then(() => reject(new Error(`redis-server on ${port} exited: ${out}`)))
  })
  let stopped = false
  const stop = async (how: 'shutdown' | 'kill' = 'shutdown') => {
    if (stopped) return
    stopped = true
    if (how === 'kill') child.kill('SIGKILL')
    else spawnSync('redis-cli', ['-p', String(port), 'shutdown'])
    await exited
  }
  t.teardown(async () => {
    await stop('kill')
    if (fixed.dir === undefined) rmSync(dir, { recursive: true, force: true })
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child,
    stop,
    restart: () => startRedis(t, args, { port, dir }),
  }
}

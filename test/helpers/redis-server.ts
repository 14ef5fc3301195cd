import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/** Points the tests at a Redis of the operator's choice instead of a private redis-server. */
export const TEST_REDIS_URL_ENV = 'CIRCLES_TEST_REDIS_URL'

/** What a machine without redis-server is told, in one line, before any test waits on Redis. */
export const REDIS_MISSING =
  `redis-server and redis-cli are not installed: the Redis tests start a private redis-server (Debian: apt-get install redis-server redis-tools), or set ${TEST_REDIS_URL_ENV} to a Redis they may use`

/** Fail at once, with {@link REDIS_MISSING}, when redis-server or redis-cli is not on the PATH. */
export function requireRedisServer(): void {
  for (const program of ['redis-server', 'redis-cli']) {
    if (spawnSync(program, ['--version'], { stdio: 'ignore' }).error !== undefined) throw new Error(REDIS_MISSING)
  }
}

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

/** A unique key prefix for one test (several tests may share one Redis). */
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

let fileRedis: Promise<string> | undefined

/**
 * The URL of the Redis this test file uses: `$CIRCLES_TEST_REDIS_URL` when set, else a private
 * redis-server on a free port, started on the first call and stopped when the file's process
 * exits (so every test of the file shares it, and nothing is left behind).
 */
export function testRedisUrl(): Promise<string> {
  const given = process.env[TEST_REDIS_URL_ENV]
  if (given !== undefined && given !== '') return Promise.resolve(given)
  fileRedis ??= (async () => {
    const server = await spawnRedis(await freePort(), mkdtempSync(join(tmpdir(), 'circles-test-redis-')), ['--save', '', '--appendonly', 'no'])
    // Not a reason for the file's process to stay: it ends the server as it exits.
    server.child.unref()
    for (const stream of [server.child.stdout, server.child.stderr]) (stream as unknown as { unref(): void }).unref()
    process.once('exit', () => {
      server.child.kill('SIGKILL')
      rmSync(server.dir, { recursive: true, force: true })
    })
    return `redis://127.0.0.1:${server.port}`
  })()
  return fileRedis
}

/**
 * The test Redis ({@link testRedisUrl}) and a client of it whose keys under `prefix` are deleted
 * at teardown.
 */
export async function testRedis(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<{ url: string; redis: Redis }> {
  const url = await testRedisUrl()
  const redis = new Redis(url, { lazyConnect: false })
  t.teardown(async () => {
    const keys = await keysUnder(redis, prefix)
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
    redis.disconnect()
  })
  return { url, redis }
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

/** Start `redis-server` on `port` with its data in `dir`; resolves once it accepts connections. */
async function spawnRedis(port: number, dir: string, args: readonly string[]): Promise<{ port: number; dir: string; child: ChildProcess; exited: Promise<void> }> {
  requireRedisServer()
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
  return { port, dir, child, exited }
}

/**
 * A private `redis-server` on a free port, stopped at teardown (for a test that stops, restarts
 * or configures its own server; the others share the file's, see {@link testRedis}). `args` are extra server options
 * (e.g. ['--appendonly', 'yes']); its data directory is a temporary one unless `dir` is given.
 */
export async function startRedis(
  t: { teardown(fn: () => unknown): void },
  args: readonly string[] = ['--save', '', '--appendonly', 'no'],
  fixed: { port?: number; dir?: string } = {},
): Promise<RedisProcess> {
  const port = fixed.port ?? (await freePort())
  const dir = fixed.dir ?? mkdtempSync(join(tmpdir(), 'circles-test-redis-'))
  const { child, exited } = await spawnRedis(port, dir, args)
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

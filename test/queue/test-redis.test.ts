import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT } from '../helpers/cli-process.js'
import { REDIS_MISSING, TEST_REDIS_URL_ENV } from '../helpers/redis-server.js'

// What the Redis tests need, and what they say when it is missing: a private redis-server of
// their own by default, the Redis named by $CIRCLES_TEST_REDIS_URL instead when it is set, and on
// a machine without redis-server one line saying what to install, at once.

const FIXTURE = join(ROOT, 'test/fixtures/redis/test-redis-url.ts')
/** A PATH where no program is found (node runs by its full path): no redis-server, no redis-cli. */
const NO_REDIS_PATH = mkdtempSync(join(tmpdir(), 'circles-empty-path-'))
t.teardown(() => rmSync(NO_REDIS_PATH, { recursive: true, force: true }))

function ask(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', FIXTURE, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const { NODE_OPTIONS: _drop, [TEST_REDIS_URL_ENV]: _given, ...base } = process.env

t.test('by default a test file starts a private redis-server, and ends it with itself', async (t) => {
  const { code, stdout, stderr } = await ask(base, 'pids')
  t.equal(code, 0, stderr)
  const found = JSON.parse(stdout) as { url: string; pid: number; parent: number; self: number }
  t.equal(found.parent, found.self, 'the server is a child of the test process')
  t.not(found.url, 'redis://127.0.0.1:6379', 'on a port of its own')
  t.match(found.url, /^redis:\/\/127\.0\.0\.1:\d+$/)
  // The process has exited: its server goes with it (waiting for the kernel to reap it).
  while (existsSync(`/proc/${found.pid}`)) await sleep(10)
  t.pass('the server is gone')
})

t.test('$CIRCLES_TEST_REDIS_URL points the tests at another Redis (no redis-server needed)', async (t) => {
  const { code, stdout, stderr } = await ask({ ...base, PATH: NO_REDIS_PATH, [TEST_REDIS_URL_ENV]: 'redis://10.1.2.3:6390' })
  t.equal(code, 0, stderr)
  t.equal(stdout, 'redis://10.1.2.3:6390\n')
})

t.test('without redis-server: one line saying what to install, at once', async (t) => {
  const { code, stdout, stderr } = await ask({ ...base, PATH: NO_REDIS_PATH })
  t.equal(code, 2)
  t.equal(stdout, '')
  t.equal(stderr, `${REDIS_MISSING}\n`)
  t.match(REDIS_MISSING, /^redis-server and redis-cli are not installed: .*apt-get install redis-server redis-tools.*CIRCLES_TEST_REDIS_URL/)
})

/**
 * The database lock's parts at the module level, on real files and processes: the identity a
 * lock file records and the liveness check of a recorded holder, fsyncDirectory, the DB_LOCKED
 * errors and the poll pause, the pid-file and flock(1) acquisitions called directly, and
 * HeldDatabaseLock's loss reporting.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatIdentity, isProcessAlive, ownIdentity, parseIdentity } from '../../src/storage/process-identity.js'
import { fsyncDirectory } from '../../src/storage/fsync-directory.js'
import { DEFAULT_LOCK_POLL_INTERVAL_MS, databaseLockedError, pauseBeforeRetry, stoppedWaitingError } from '../../src/storage/database-lock-options.js'
import { acquireWithPidFile } from '../../src/storage/pid-file-lock.js'
import { acquireWithFlock } from '../../src/storage/flock-lock.js'
import { HeldDatabaseLock } from '../../src/storage/held-database-lock.js'

/** A pid that ran and has been reaped: nothing answers to it now (short of reuse). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => child.on('exit', resolve))
  return child.pid!
}

function dbDir(t: { testdir(): string }): { dbPath: string; lockPath: string } {
  const dbPath = join(t.testdir(), 'db')
  mkdirSync(dbPath, { recursive: true })
  return { dbPath, lockPath: join(dbPath, '.lock') }
}

t.test('formatIdentity / parseIdentity', async (t) => {
  t.equal(formatIdentity({ pid: 12, startTicks: 345 }), '12 345\n')
  t.equal(formatIdentity({ pid: 12 }), '12\n')
  t.same(parseIdentity('12 345\n'), { pid: 12, startTicks: 345 })
  t.same(parseIdentity('12'), { pid: 12 })
  for (const text of ['', '\n', '0\n', '-3\n', 'abc', '12 \n', '12 34 56\n', ' 12\n', '12\n\n', '99999999999999999999\n']) t.equal(parseIdentity(text), undefined, JSON.stringify(text))
})

t.test('ownIdentity: this pid and, with /proc, its start time; it is alive', async (t) => {
  const own = ownIdentity()
  t.equal(own.pid, process.pid)
  t.type(own.startTicks, 'number')
  t.ok(Number.isSafeInteger(own.startTicks) && own.startTicks! > 0, 'start ticks read from /proc')
  t.same(parseIdentity(formatIdentity(own)), own, 'round trip')
  t.equal(isProcessAlive(own), true)
  t.equal(isProcessAlive({ pid: process.pid }), true, 'without a start time')
})

t.test('isProcessAlive: a reaped pid, and a live pid with another start time (reused), are not', async (t) => {
  t.equal(isProcessAlive({ pid: await deadPid() }), false)
  t.equal(isProcessAlive({ pid: process.pid, startTicks: ownIdentity().startTicks! + 1 }), false)
})

t.test('fsyncDirectory: a directory syncs; a file or a missing path throws', async (t) => {
  const dir = t.testdir({ file: 'x' })
  fsyncDirectory(dir)
  t.throws(() => fsyncDirectory(join(dir, 'file')), { code: 'ENOTDIR' })
  t.throws(() => fsyncDirectory(join(dir, 'missing')), { code: 'ENOENT' })
})

t.test('DB_LOCKED errors and the poll pause', async (t) => {
  t.match(databaseLockedError('/db', { pid: 77 }), { code: 'DB_LOCKED', message: 'Database path /db is in use by process 77; one process serves a database path at a time', details: { path: '/db', pid: 77 } })
  t.same(databaseLockedError('/db', undefined).details, { path: '/db' })
  t.match(databaseLockedError('/db', undefined).message, 'in use by another process')
  t.match(stoppedWaitingError('/db'), { code: 'DB_LOCKED', message: 'Stopped waiting for the lock on database path /db', details: { path: '/db' } })
  t.equal(DEFAULT_LOCK_POLL_INTERVAL_MS, 250)
  const aborted = AbortSignal.abort()
  await t.rejects(pauseBeforeRetry('/db', { wait: true, signal: aborted }), { code: 'DB_LOCKED', message: 'Stopped waiting for the lock on database path /db' })
  const controller = new AbortController()
  const pause = pauseBeforeRetry('/db', { wait: true, signal: controller.signal, pollIntervalMs: 3_600_000 })
  controller.abort()
  await t.rejects(pause, { code: 'DB_LOCKED' }, 'an abort during the pause ends it at once')
  await t.resolves(pauseBeforeRetry('/db', { wait: true, pollIntervalMs: 1 }))
})

t.test('pid file: taken with our identity, refused to a second taker, released only if ours', async (t) => {
  const { dbPath, lockPath } = dbDir(t)
  const lock = await acquireWithPidFile(dbPath, lockPath, { wait: false })
  t.equal(lock.mechanism, 'pidfile')
  t.equal(lock.fd, undefined)
  t.equal(readFileSync(lockPath, 'utf8'), formatIdentity(ownIdentity()))
  await t.rejects(acquireWithPidFile(dbPath, lockPath, { wait: false }), { code: 'DB_LOCKED', details: { path: dbPath, pid: process.pid } })
  await lock.release()
  t.throws(() => readFileSync(lockPath), { code: 'ENOENT' }, 'released: the file is gone')
  const again = await acquireWithPidFile(dbPath, lockPath, { wait: false })
  writeFileSync(lockPath, '1 1\n')
  await again.release()
  t.equal(readFileSync(lockPath, 'utf8'), '1 1\n', "a file that is not ours is not removed")
})

t.test('pid file: stale records are taken over', async (t) => {
  for (const stale of [`${await deadPid()}\n`, `${process.pid} ${ownIdentity().startTicks! + 1}\n`, '', 'garbage']) {
    const { dbPath, lockPath } = dbDir(t)
    writeFileSync(lockPath, stale)
    const lock = await acquireWithPidFile(dbPath, lockPath, { wait: false })
    t.equal(readFileSync(lockPath, 'utf8'), formatIdentity(ownIdentity()), `over ${JSON.stringify(stale)}`)
    await lock.release()
  }
})

t.test('pid file: a waiter announces the holder once, and a signal stops the wait', async (t) => {
  const { dbPath, lockPath } = dbDir(t)
  const held = await acquireWithPidFile(dbPath, lockPath, { wait: false })
  t.teardown(() => held.release())
  const controller = new AbortController()
  const announced: unknown[] = []
  let polls = 0
  const waiting = acquireWithPidFile(dbPath, lockPath, {
    wait: true,
    pollIntervalMs: 1,
    signal: controller.signal,
    onWaiting: (holder) => {
      announced.push(holder)
    },
  })
  // Poll a few times through the module's own pause, then give up.
  const stopAfterPolls = setInterval(() => {
    if (++polls === 5) controller.abort()
  }, 1)
  await t.rejects(waiting, { code: 'DB_LOCKED', message: `Stopped waiting for the lock on database path ${dbPath}` })
  clearInterval(stopAfterPolls)
  t.same(announced, [{ pid: process.pid }], 'announced once, however many polls')
})

t.test('pid file: a removed or replaced lock file is reported lost', async (t) => {
  const keepAlive = setInterval(() => {}, 1_000)
  t.teardown(() => clearInterval(keepAlive))
  const { dbPath, lockPath } = dbDir(t)
  const lock = await acquireWithPidFile(dbPath, lockPath, { wait: false })
  const lost = new Promise<string>((resolve) => lock.onLost(resolve))
  writeFileSync(`${lockPath}.new`, '1\n')
  renameSync(`${lockPath}.new`, lockPath)
  t.equal(await lost, 'the lock file was replaced')
  const late = await new Promise<string>((resolve) => lock.onLost(resolve))
  t.equal(late, 'the lock file was replaced', 'a listener added after the loss hears it too')
  await lock.release()
  t.equal(readFileSync(lockPath, 'utf8'), '1\n', 'the replacement is left alone')

  const second = await acquireWithPidFile(dbPath, join(dbPath, '.lock2'), { wait: false })
  const removed = new Promise<string>((resolve) => second.onLost(resolve))
  unlinkSync(join(dbPath, '.lock2'))
  t.equal(await removed, 'the lock file was removed')
  await second.release()
})

t.test('flock: a kernel lock on an open descriptor, refused to a second descriptor, cleared on release', async (t) => {
  const { dbPath, lockPath } = dbDir(t)
  const lock = await acquireWithFlock(dbPath, lockPath, { wait: false }, 'flock')
  t.ok(lock !== undefined)
  t.equal(lock!.mechanism, 'flock')
  t.type(lock!.fd, 'number')
  t.equal(fstatSync(lock!.fd!).isFile(), true)
  t.equal(readFileSync(lockPath, 'utf8'), formatIdentity(ownIdentity()))
  await t.rejects(acquireWithFlock(dbPath, lockPath, { wait: false }, 'flock'), { code: 'DB_LOCKED', details: { path: dbPath, pid: process.pid } }, 'even in the same process')
  await lock!.release()
  await lock!.release()
  t.equal(readFileSync(lockPath, 'utf8'), '', 'the record is cleared on release')
  t.throws(() => closeSync(lock!.fd!), { code: 'EBADF' }, 'and the descriptor closed')
  const next = await acquireWithFlock(dbPath, lockPath, { wait: false }, 'flock')
  t.ok(next !== undefined, 'the path can be locked again')
  await next!.release()
})

t.test('flock: a missing program resolves undefined; a failing one is STORAGE_ERROR', async (t) => {
  const { dbPath, lockPath } = dbDir(t)
  t.equal(await acquireWithFlock(dbPath, lockPath, { wait: false }, join(dbPath, 'no-such-flock')), undefined)
  await t.rejects(acquireWithFlock(dbPath, lockPath, { wait: false }, 'false'), { code: 'STORAGE_ERROR', message: `Cannot lock ${lockPath}: flock exited with 1` })
})

t.test('flock: a live pid-file holder recorded in the file is not overridden', async (t) => {
  const { dbPath, lockPath } = dbDir(t)
  const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] })
  t.teardown(() => child.kill('SIGKILL'))
  await new Promise((resolve) => child.on('spawn', resolve))
  writeFileSync(lockPath, `${child.pid}\n`)
  await t.rejects(acquireWithFlock(dbPath, lockPath, { wait: false }, 'flock'), { code: 'DB_LOCKED', details: { pid: child.pid } })
})

t.test('HeldDatabaseLock: reports a loss once, to every listener; nothing after release', async (t) => {
  const keepAlive = setInterval(() => {}, 1_000)
  t.teardown(() => clearInterval(keepAlive))
  const dir = t.testdir({ '.lock': 'x', other: 'y' })
  const lockPath = join(dir, '.lock')
  let reason: string | undefined
  let releases = 0
  const lock = new HeldDatabaseLock({ path: lockPath, mechanism: 'pidfile', check: () => reason, release: () => releases++ })
  t.equal(lock.path, lockPath)
  const heard: string[] = []
  const first = new Promise<void>((resolve) => lock.onLost((r) => (heard.push(`a ${r}`), resolve())))
  lock.onLost((r) => heard.push(`b ${r}`))
  reason = 'gone'
  unlinkSync(lockPath)
  await first
  t.same(heard, ['a gone', 'b gone'])
  await lock.release()
  await lock.release()
  t.equal(releases, 1, 'release is idempotent')
  lock.onLost(() => heard.push('after release'))
  await Promise.resolve()
  t.same(heard, ['a gone', 'b gone'])

  let releasedReason: string | undefined = undefined
  const quiet = new HeldDatabaseLock({ path: join(dir, 'other'), mechanism: 'flock', fd: 99, check: () => releasedReason, release: () => {} })
  t.equal(quiet.fd, 99)
  quiet.onLost(() => t.fail('no loss is reported after release'))
  await quiet.release()
  releasedReason = 'late'
  unlinkSync(join(dir, 'other'))
})

import t from 'tap'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { acquireDatabaseLock, DATABASE_LOCK_FILE } from '../../src/storage/index.js'
import { spawnTs } from '../helpers/ts-child.js'

const HOLDER = fileURLToPath(new URL('../fixtures/storage/lock-holder.ts', import.meta.url))

interface LockEvent {
  readonly event: 'waiting' | 'locked' | 'failed' | 'lost'
  readonly [key: string]: unknown
}

/** A lock-holder process and the events it prints, awaited by name. */
class Holder {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  private readonly seen: LockEvent[] = []
  private readonly waiters: { name: string; resolve: (e: LockEvent) => void }[] = []
  private stderr = ''

  constructor(t: { teardown(fn: () => void): void }, dbPath: string, mode: 'wait' | 'nowait', mechanism: 'flock' | 'pidfile') {
    this.child = spawnTs(HOLDER, [dbPath, mode, mechanism], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
    t.teardown(() => {
      this.child.kill('SIGKILL')
    })
    let buffer = ''
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()))
    this.child.stdout!.on('data', (c: Buffer) => {
      buffer += c.toString()
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const event = JSON.parse(buffer.slice(0, i)) as LockEvent
        buffer = buffer.slice(i + 1)
        this.seen.push(event)
        for (const w of this.waiters.filter((w) => w.name === event.event)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve(event)
        }
      }
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  /** The first event of that name; rejects if the process exits without printing it. */
  next(name: LockEvent['event']): Promise<LockEvent> {
    const already = this.seen.find((e) => e.event === name)
    if (already !== undefined) return Promise.resolve(already)
    return new Promise((resolve, reject) => {
      this.waiters.push({ name, resolve })
      void this.exited.then((code) => {
        const found = this.seen.find((e) => e.event === name)
        if (found) resolve(found)
        else reject(new Error(`the holder exited (${code}) before "${name}": ${JSON.stringify(this.seen)} ${this.stderr}`))
      })
    })
  }
}

const lockFile = (dbPath: string) => join(dbPath, DATABASE_LOCK_FILE)
const recordedPid = (dbPath: string) => Number(readFileSync(lockFile(dbPath), 'utf8').split(/\s/)[0])

for (const mechanism of ['flock', 'pidfile'] as const) {
  t.test(`${mechanism}: one process at a time; a waiter takes over when the holder is killed -9`, { timeout: 30_000 }, async (t) => {
    const dbPath = join(t.testdir(), 'db')
    const first = new Holder(t, dbPath, 'nowait', mechanism)
    t.match(await first.next('locked'), { pid: first.pid, mechanism })
    t.equal(recordedPid(dbPath), first.pid, 'the lock file names the holder')

    // Both start now (each start takes a while); the standby's turn comes below.
    const refused = new Holder(t, dbPath, 'nowait', mechanism)
    const standby = new Holder(t, dbPath, 'wait', mechanism)
    const failed = await refused.next('failed')
    t.match(failed, { code: 'DB_LOCKED', details: { path: dbPath, pid: first.pid } })
    t.match(failed['message'], `Database path ${dbPath} is in use by process ${first.pid}`)
    t.equal(await refused.exited, 3, 'a second holder that does not wait fails at once')
    await t.rejects(
      acquireDatabaseLock(dbPath, { wait: false, ...(mechanism === 'pidfile' ? { flockCommand: null } : {}) }),
      { code: 'DB_LOCKED', details: { pid: first.pid } },
      'and so does one in this process',
    )

    t.match(await standby.next('waiting'), { holder: { pid: first.pid } }, 'a standby says whom it waits for')
    first.child.kill('SIGKILL')
    await first.exited
    t.match(await standby.next('locked'), { pid: standby.pid }, 'the standby took over from the killed holder')
    t.equal(recordedPid(dbPath), standby.pid)

    standby.child.stdin!.end()
    t.equal(await standby.exited, 0, 'the standby released and exited')
    const after = await acquireDatabaseLock(dbPath, { wait: false, ...(mechanism === 'pidfile' ? { flockCommand: null } : {}) })
    t.equal(after.mechanism, mechanism, 'a released path can be taken again')
    await after.release()
  })
}

t.test('in one process: a second acquisition fails, release is idempotent, a removed lock file is reported lost', { timeout: 10_000 }, async (t) => {
  const dbPath = join(t.testdir(), 'db')
  const lock = await acquireDatabaseLock(dbPath, { wait: false })
  t.equal(lock.mechanism, 'flock', 'flock(1) is used where it is installed')
  await t.rejects(acquireDatabaseLock(dbPath, { wait: false }), { code: 'DB_LOCKED', details: { pid: process.pid } })
  const lost = new Promise<string>((resolve) => lock.onLost(resolve))
  // The lock's file watch does not keep a process alive by itself (a node's sockets do): this
  // timer stands in for them until the event comes (or the test's timeout fails it).
  const keepAlive = setInterval(() => {}, 1000)
  unlinkSync(lockFile(dbPath))
  t.match(await lost, /removed or replaced/, 'the holder learns that its lock no longer excludes anyone')
  clearInterval(keepAlive)
  const second = await acquireDatabaseLock(dbPath, { wait: false })
  t.pass('(which is why: a new lock file can be locked by another holder)')
  await lock.release()
  await lock.release()
  await second.release()
})

t.test('a wait can be given up through its signal, even from onWaiting', { timeout: 10_000 }, async (t) => {
  const dbPath = join(t.testdir(), 'db')
  for (const flockCommand of [undefined, null]) {
    const held = await acquireDatabaseLock(dbPath, { wait: false, ...(flockCommand === null ? { flockCommand } : {}) })
    const controller = new AbortController()
    const waiting = acquireDatabaseLock(dbPath, {
      wait: true,
      signal: controller.signal,
      onWaiting: () => controller.abort(),
      ...(flockCommand === null ? { flockCommand, pollIntervalMs: 10_000 } : {}),
    })
    await t.rejects(waiting, { code: 'DB_LOCKED', message: /Stopped waiting/ }, `${held.mechanism}: aborted`)
    await held.release()
  }
})

t.test('pid-file fallback: used when flock is missing; stale files are taken over', { timeout: 30_000 }, async (t) => {
  const dbPath = join(t.testdir(), 'db')
  const fallback = await acquireDatabaseLock(dbPath, { wait: false, flockCommand: join(dbPath, 'no-such-flock') })
  t.equal(fallback.mechanism, 'pidfile', 'a missing flock(1) falls back to the pid file')
  await fallback.release()

  const dead = spawnSync(process.execPath, ['-e', '']).pid! // exited and reaped: its pid names no process (until reused)
  for (const content of [`${dead}\n`, 'garbage', '']) {
    writeFileSync(lockFile(dbPath), content)
    const lock = await acquireDatabaseLock(dbPath, { wait: false, flockCommand: null })
    t.equal(recordedPid(dbPath), process.pid, `a lock file holding ${JSON.stringify(content)} is stale and taken over`)
    await lock.release()
  }
})

t.test('a flock acquirer does not take a path a live pid-file holder serves', { timeout: 30_000 }, async (t) => {
  const dbPath = join(t.testdir(), 'db')
  const holder = new Holder(t, dbPath, 'nowait', 'pidfile')
  await holder.next('locked')
  await t.rejects(acquireDatabaseLock(dbPath, { wait: false }), { code: 'DB_LOCKED', details: { pid: holder.pid } })
})

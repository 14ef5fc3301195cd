import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { SandboxPool } from '../../src/sandbox/index.js'
import { existsSync, watch } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { LIMITS, QUOTA, context, decode, run, runAll } from '../helpers/sandbox.js'

/** SIGKILL a sandbox host; refuses anything but a real child pid (kill(-1) would signal every process). */
function killHost(pid: number | undefined): void {
  if (pid === undefined || !(pid > 1) || pid === process.pid) throw new Error(`not a sandbox host pid: ${pid}`)
  process.kill(pid, 'SIGKILL')
}

const crashedHostEvents: { circle: string; origin: string | undefined; caller: string }[] = []
const pool = new SandboxPool({ processes: 1, hooks: { onCrash: (run) => crashedHostEvents.push(run) } })

await pool.start()
t.teardown(() => pool.close())

t.test('SandboxPool crash recovery', async (t) => {

  t.test('answers the run a killed host was executing WORKER_CRASHED, runs the ones behind it on the next host', async (t) => {
    const ctx = { ...context(t.testdir()), limits: { timeoutMs: 10_000, cpuMs: 10_000 } }
    const pid = pool.pids[0]!
    const pending = runAll(pool, ctx, ['while (true) {}', '"queued behind it"'])
    await sleep(300)
    killHost(pid)
    const outcomes = await pending
    t.match(outcomes, [{ type: 'error', code: 'WORKER_CRASHED' }, { type: 'ok', output: 'queued behind it' }])
    t.match(await run(pool, ctx, '"alive"'), { type: 'ok', output: 'alive' })
    t.not(pool.pids[0], pid, 'a new host process took over')
  })

  t.test('a write interrupted by a kill leaves the old or the new document, never a torn one', async (t) => {
    const pad = 'x'.repeat(300_000)
    for (const delayMs of [120, 250, 400]) {
      const ctx = {
        ...context(t.testdir()),
        limits: { timeoutMs: 10_000, cpuMs: 10_000 },
        quota: { maxDocumentBytes: 1 << 20, maxNamespaceBytes: 1 << 30 },
      }
      t.match(await run(pool, ctx, `save_data("doc", { i: -1, pad: "${'x'.repeat(10)}" })`), { type: 'ok' })
      const writing = run(pool, ctx, `const pad = "x".repeat(${pad.length}); for (let i = 0; ; i++) save_data("doc", { i, pad })`)
      await sleep(delayMs)
      killHost(pool.pids[0])
      t.match(await writing, { type: 'error', code: 'WORKER_CRASHED' })
      const after = await run(pool, ctx, 'const d = load_data("doc"); [typeof d.i, d.i === -1 ? 10 : d.pad.length, list_data()]')
      const expected = new Set(['["number",10,["doc"]]', `["number",${pad.length},["doc"]]`])
      t.ok(after.type === 'ok' && expected.has(after.output), `killed after ${delayMs} ms: ${after.type === 'ok' ? after.output : after.message}`)
    }
  })
})

t.test('SandboxPool({ isolation: "thread" })', async (t) => {
  const threads = new SandboxPool({ processes: 2, isolation: 'thread' })
  await threads.start()
  t.teardown(() => threads.close())
  t.same(threads.pids, [process.pid, process.pid], 'the hosts live in this process')
  const ctx = context(t.testdir())
  t.match(await run(threads, ctx, '[CIRCLE_PUBLIC_KEY === CALLER_PUBLIC_KEY, 6 * 7]'), { type: 'ok', output: '[true,42]' })
  t.match(await run(threads, ctx, 'while (true) {}'), { type: 'error', code: 'SCRIPT_TIMEOUT' })
  t.match(await run(threads, ctx, '"still serving"'), { type: 'ok', output: 'still serving' })
  t.throws(() => new SandboxPool({ isolation: 'vm' as never }), { code: 'INVALID_OPTION', message: /options.isolation/ })

  t.test('a worker thread that dies mid-run is replaced; its runs are answered WORKER_CRASHED', async (t) => {
    const busy = { ...context(t.testdir()), limits: { timeoutMs: 10_000, cpuMs: 10_000 } }
    t.equal(threads.threads.length, 2)
    const pending = runAll(threads, busy, ['while (true) {}', '"behind it"'])
    await sleep(200)
    for (const worker of threads.threads) await worker.terminate()
    const outcomes = await pending
    t.match(outcomes, [{ type: 'error', code: 'WORKER_CRASHED' }, { type: 'ok', output: 'behind it' }])
    t.match(await run(threads, busy, '"replaced"'), { type: 'ok', output: 'replaced' })
  })
})

t.test('a host that dies mid-frame: its progress marker names the culprit', async (t) => {
  // One frame, in this order: a write of A (its outcome is written at once), then runs that change
  // nothing — of B, of A — whose outcomes wait for the end of the frame, A's endless loop (which
  // writes a document first, so the test can see it running), and a run of B. The host is killed
  // while the loop runs.
  const dir = t.testdir()
  const [a, b] = [generateKeyPair().publicKey, generateKeyPair().publicKey]
  const limits = { ...LIMITS, timeoutMs: 10_000, cpuMs: 10_000 }
  const refA = pool.register({ circle: a, root: join(dir, a), dbPathLabel: a, limits, quota: { ...QUOTA } })
  const refB = pool.register({ circle: b, root: join(dir, b), dbPathLabel: b, limits, quota: { ...QUOTA } })
  const req = (script: string) => ({ script, caller: '', canWrite: true, canCall: false, timeoutMs: 10_000 })
  const started = crashedHostEvents.length
  const runs = [
    pool.run(refA, req('save_data("n", 1); "a-write"')),
    pool.run(refB, req('"b1"')),
    pool.run(refA, req('"a1"')),
    pool.run(refA, req('save_data("looping", true); while (true) {}')),
    pool.run(refB, req('"b2"')),
  ]
  // The loop writes a document before it loops: its appearance on disk says the loop runs.
  const dataDir = join(dir, a, 'data')
  const write = await runs[0]!
  t.match(decode(write), { type: 'ok', output: 'a-write' }, 'the write, completed before the crash, is answered with its outcome')
  await new Promise<void>((resolve) => {
    const watcher = watch(dataDir, () => {
      if (existsSync(join(dataDir, 'looping.json'))) {
        watcher.close()
        resolve()
      }
    })
    if (existsSync(join(dataDir, 'looping.json'))) {
      watcher.close()
      resolve()
    }
  })
  killHost(pool.pids[0])
  const [, b1, a1, loop, b2] = (await Promise.all(runs)).map(decode)
  t.match(loop, { type: 'error', code: 'WORKER_CRASHED', message: /died/ }, 'the run executing when the host died is the culprit')
  t.match(a1, { type: 'error', code: 'WORKER_CRASHED', message: /changing nothing/ }, "a completed run of the culprit's context whose answer was lost is not run again")
  t.match(b1, { type: 'ok', output: 'b1' }, 'a completed run of another context whose answer was lost runs again')
  t.match(b2, { type: 'ok', output: 'b2' }, 'a run that had not started runs on the next host')
  t.equal(crashedHostEvents.length - started, 1, 'one crash reported, for the culprit')
  t.same(crashedHostEvents.at(-1), { circle: a, origin: undefined, caller: '' })
  t.match(decode(await pool.run(refA, req('load_data("n")'))), { type: 'ok', output: '1' }, 'the write is on disk')
})

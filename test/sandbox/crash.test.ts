import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { SandboxPool } from '../../src/sandbox/index.js'
import { context, run, runAll } from '../helpers/sandbox.js'

const pool = new SandboxPool({ processes: 1 })

await pool.start()
t.teardown(() => pool.close())

t.test('SandboxPool crash recovery', async (t) => {

  t.test('answers the run a killed host was executing WORKER_CRASHED, runs the ones behind it on the next host', async (t) => {
    const ctx = { ...context(t.testdir()), limits: { timeoutMs: 10_000, cpuMs: 10_000 } }
    const pid = pool.pids[0]!
    const pending = runAll(pool, ctx, ['while (true) {}', '"queued behind it"'])
    await sleep(300)
    process.kill(pid, 'SIGKILL')
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
      process.kill(pool.pids[0]!, 'SIGKILL')
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

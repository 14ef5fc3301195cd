import t from 'tap'
import { SandboxPool } from '../../src/sandbox/index.js'
import { context, run } from '../helpers/sandbox.js'

const pool = new SandboxPool({ processes: 1 })

await pool.start()
t.teardown(() => pool.close())

t.test('run() limits', async (t) => {
  const ctx = context(t.testdir())

  t.test('answers SCRIPT_TIMEOUT for an endless loop, then serves the next run', async (t) => {
    const r = await run(pool, ctx, 'while (true) {}')
    t.match(r, { type: 'error', code: 'SCRIPT_TIMEOUT' })
    t.ok(r.runMs >= 400 && r.runMs < 2000, `stopped near the 500 ms limit (${r.runMs.toFixed(0)} ms)`)
    t.match(await run(pool, ctx, '1 + 1'), { type: 'ok', output: '2' })
  })

  t.test('a per-request timeout lowers the limit', async (t) => {
    const r = await run(pool, ctx, { script: 'while (true) {}', timeoutMs: 50 })
    t.match(r, { type: 'error', code: 'SCRIPT_TIMEOUT', message: /50 ms/ })
    t.ok(r.runMs < 400)
  })

  t.test('answers SCRIPT_TIMEOUT for an endless microtask chain', async (t) => {
    t.match(await run(pool, ctx, 'function f() { Promise.resolve().then(f) } f(); 1'), { type: 'error', code: 'SCRIPT_TIMEOUT' })
    t.match(await run(pool, ctx, '"ok"'), { type: 'ok', output: 'ok' })
  })

  t.test('answers SCRIPT_TIMEOUT past the CPU limit', async (t) => {
    const cpuCtx = { ...context(t.testdir()), limits: { cpuMs: 20, timeoutMs: 2000 } }
    const r = await run(pool, cpuCtx, 'const end = Date.now() + 100; while (Date.now() < end) {} "done"')
    t.match(r, { type: 'error', code: 'SCRIPT_TIMEOUT', message: /CPU/ })
  })

  t.test('answers SCRIPT_MEMORY for a memory bomb, then serves the next run', async (t) => {
    // Time limits far away: on a loaded machine filling the heap can take longer than 500 ms.
    const roomy = { ...context(t.testdir()), limits: { timeoutMs: 30_000, cpuMs: 30_000 } }
    const r = await run(pool, roomy, 'const a = []; while (true) a.push(new Array(100000).fill(1))')
    t.match(r, { type: 'error', code: 'SCRIPT_MEMORY' })
    t.match(await run(pool, ctx, '[1, 2, 3].length'), { type: 'ok', output: '3' })
  })

  t.test('answers SCRIPT_MEMORY for a string bomb', async (t) => {
    const roomy = { ...context(t.testdir()), limits: { timeoutMs: 30_000, cpuMs: 30_000 } }
    t.match(await run(pool, roomy, 'let s = "x"; while (true) s = s + s; s.length'), { type: 'error', code: /SCRIPT_MEMORY|SCRIPT_ERROR/ })
    t.match(await run(pool, ctx, '"fine"'), { type: 'ok', output: 'fine' })
  })

  t.test('answers SCRIPT_ERROR with the message and no host stack', async (t) => {
    const r = await run(pool, ctx, 'function deep() { throw new Error("kaboom") } deep()')
    t.match(r, { type: 'error', code: 'SCRIPT_ERROR', message: 'Error: kaboom' })
    if (r.type === 'error') {
      t.notMatch(r.message, /at |isolated|node:|\/work\//, 'no stack trace or host path')
    }
    t.match(await run(pool, ctx, 'throw "a string"'), { type: 'error', code: 'SCRIPT_ERROR', message: 'a string' })
    t.match(await run(pool, ctx, 'throw { toString() { throw 1 } }'), { type: 'error', code: 'SCRIPT_ERROR' })
    t.match(await run(pool, ctx, 'syntax error here'), { type: 'error', code: 'SCRIPT_ERROR', message: /SyntaxError/ })
  })

  t.test('answers OUTPUT_TOO_LARGE past the output limit', async (t) => {
    const small = { ...context(t.testdir()), limits: { maxOutputBytes: 100 } }
    t.match(await run(pool, small, '"x".repeat(200)'), { type: 'error', code: 'OUTPUT_TOO_LARGE' })
    t.match(await run(pool, small, '"x".repeat(20)'), { type: 'ok' })
    t.match(await run(pool, ctx, 'const a = {}; a.self = a; a'), { type: 'error', code: 'OUTPUT_TOO_LARGE', message: /not JSON/ })
  })

  t.test('cuts print output past the log limit and says so', async (t) => {
    // ["12345","67890"] is 17 bytes; one more line ,"x" would make 21.
    const small = { ...context(t.testdir()), limits: { maxLogBytes: 20 } }
    const r = await run(pool, small, 'print("12345"); print("67890"); print("x"); "ok"')
    t.match(r, { type: 'ok', output: 'ok', logs: ['12345', '67890'], logsTruncated: true })
  })
})

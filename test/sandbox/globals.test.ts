import t from 'tap'
import { SandboxPool } from '../../src/sandbox/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { context, run, runAll } from '../helpers/sandbox.js'

const pool = new SandboxPool({ processes: 1 })

await pool.start()
t.teardown(() => pool.close())

t.test('run({ script }) completion value', async (t) => {
  const ctx = context(t.testdir())
  // [script, output, result] — result is absent (undefined here) when the value is a string or a BigInt.
  const cases: [string, string, unknown][] = [
    ['"a"; 1 + 2', '3', 3],
    ['"hello"', 'hello', undefined],
    ['({ a: [1, "x", null] })', '{"a":[1,"x",null]}', { a: [1, 'x', null] }],
    ['[1, 2]', '[1,2]', [1, 2]],
    ['true', 'true', true],
    ['null', 'null', null],
    ['undefined', '', null],
    ['', '', null],
    ['var x = 5', '', null],
    ['function f() {}', '', null],
    ['(() => 1)', '', null],
    ['2n ** 70n', '1180591620717411303424', undefined],
    ['if (true) { "then" } else { "else" }', 'then', undefined],
    ['let s = 0; for (let i = 0; i < 10; i++) s += i; s', '45', 45],
    ['NaN', 'null', null],
  ]
  for (const [script, output, result] of cases) {
    const r = await run(pool, ctx, script)
    t.equal(r.type, 'ok', script)
    if (r.type !== 'ok') continue
    t.equal(r.output, output, `${script}: output`)
    t.same(r.result, result, `${script}: result`)
    t.equal(Object.hasOwn(r, 'result'), result !== undefined, `${script}: result ${result === undefined ? 'absent' : 'present'}`)
  }
})

t.test('run({ script }) async completion values', async (t) => {
  const ctx = context(t.testdir())
  t.match(await run(pool, ctx, 'Promise.resolve(5)'), { type: 'ok', output: '5' })
  t.match(await run(pool, ctx, '(async () => { await null; await null; return "late" })()'), { type: 'ok', output: 'late' })
  t.match(await run(pool, ctx, 'Promise.reject(new RangeError("no"))'), { type: 'error', code: 'SCRIPT_ERROR', message: 'RangeError: no' })
  t.match(await run(pool, ctx, 'new Promise(() => {})'), { type: 'error', code: 'SCRIPT_ERROR', message: /never settled/ })
  t.match(await run(pool, ctx, '({ then(r) { r(1) } })'), { type: 'ok', output: '{}' }, 'a thenable is a plain value')
  t.match(await run(pool, ctx, 'Object.create(Promise.prototype)'), { type: 'error', code: 'SCRIPT_ERROR' }, 'a fake promise is refused')
})

t.test('run({ script }) globals', async (t) => {
  const ctx = context(t.testdir())
  const caller = generateKeyPair().publicKey
  t.match(await run(pool, ctx, { script: 'CALLER_PUBLIC_KEY', caller }), { output: caller })
  t.match(await run(pool, ctx, 'CIRCLE_PUBLIC_KEY'), { output: ctx.circle })
  t.match(await run(pool, ctx, 'DB_PATH'), { output: ctx.circle }, 'DB_PATH is the namespace relative to the database, never a server path')
  t.match(await run(pool, ctx, { script: 'CALLER_PUBLIC_KEY', caller: '' }), { output: '' }, 'anonymous caller is ""')
  t.match(
    await run(pool, ctx, '[typeof require, typeof process, typeof module, typeof setTimeout, typeof fetch, typeof console]'),
    { output: '["undefined","undefined","undefined","undefined","undefined","undefined"]' },
    'no host objects, no timers, no network',
  )
  t.match(
    await run(pool, ctx, '[typeof SharedArrayBuffer, typeof Atomics, typeof WebAssembly, typeof WeakRef, typeof FinalizationRegistry]'),
    { output: '["undefined","undefined","undefined","undefined","undefined"]' },
  )
})

t.test('print(...args)', async (t) => {
  const ctx = context(t.testdir())
  const r = await run(pool, ctx, 'print("a", 1, { b: 2 }, [3], null, undefined); print(); print(Symbol("s")); "done"')
  t.match(r, { type: 'ok', output: 'done', logs: ['a 1 {"b":2} [3] null undefined', '', 'Symbol(s)'], logsTruncated: false })
  const errored = await run(pool, ctx, 'print("before"); throw new Error("after")')
  t.match(errored, { type: 'error', code: 'SCRIPT_ERROR', logs: ['before'] }, 'logs survive a thrown error')
})

t.test('load_data / save_data / list_data / delete_data', async (t) => {
  const ctx = context(t.testdir())
  const [save, load, list, missing, del, delAgain, after] = await runAll(pool, ctx, [
    'save_data("profile", { name: "Ada", langs: ["en"] }); save_data("posts/1", "hi"); save_data("posts/2", 2)',
    'load_data("profile")',
    '[list_data(), list_data("posts/"), list_data("nope")]',
    'load_data("nothing")',
    'delete_data("posts/1")',
    'delete_data("posts/1")',
    'list_data()',
  ])
  t.match(save, { type: 'ok', output: '' })
  t.match(load, { type: 'ok', output: '{"name":"Ada","langs":["en"]}' })
  t.match(list, { output: '[["posts/1","posts/2","profile"],["posts/1","posts/2"],[]]' })
  t.match(missing, { output: 'null' }, 'a missing document loads as null')
  t.match(del, { output: 'true' })
  t.match(delAgain, { output: 'false' })
  t.match(after, { output: '["posts/2","profile"]' })
})

t.test('namespace quota across runs', async (t) => {
  const ctx = context(t.testdir())
  // Namespace quota 16,384 bytes, document quota 4,096 (test/helpers/sandbox.ts).
  const doc = (n: number) => `save_data("d${n}", "${'x'.repeat(3900)}")`
  for (let n = 0; n < 4; n++) t.match(await run(pool, ctx, doc(n)), { type: 'ok' }, `document ${n} fits`)
  t.match(await run(pool, ctx, doc(4)), { type: 'error', code: 'QUOTA_EXCEEDED', message: /Namespace/ })
  t.match(await run(pool, ctx, doc(0)), { type: 'ok' }, 'replacing a document of the same size fits')
  t.match(await run(pool, ctx, 'delete_data("d1")'), { type: 'ok', output: 'true' })
  t.match(await run(pool, ctx, doc(4)), { type: 'ok' }, 'deleting freed room')
  t.match(await run(pool, ctx, `save_data("big", "${'x'.repeat(5000)}")`), { type: 'error', code: 'QUOTA_EXCEEDED', message: /Document/ })
})

t.test('save_data(name, value) refuses non-JSON values', async (t) => {
  const ctx = context(t.testdir())
  t.match(await run(pool, ctx, 'save_data("x", undefined)'), { type: 'error', code: 'INVALID_DOCUMENT' })
  t.match(await run(pool, ctx, 'save_data("x", 1n)'), { type: 'error', code: 'INVALID_DOCUMENT' })
  t.match(await run(pool, ctx, 'const a = {}; a.a = a; save_data("x", a)'), { type: 'error', code: 'INVALID_DOCUMENT' })
  t.match(await run(pool, ctx, 'save_data(5, 1)'), { type: 'error', code: 'INVALID_NAME' })
  t.match(
    await run(pool, ctx, 'try { save_data("../x", 1) } catch (e) { [e.code, e instanceof Error] }'),
    { output: '["INVALID_NAME",true]' },
    'storage errors can be caught and carry their code',
  )
})

t.test('write policy: canWrite=false', async (t) => {
  const ctx = context(t.testdir())
  await run(pool, ctx, 'save_data("doc", 1)')
  const other = generateKeyPair().publicKey
  t.match(await run(pool, ctx, { script: 'save_data("doc", 2)', caller: other, canWrite: false }), { type: 'error', code: 'FORBIDDEN' })
  t.match(await run(pool, ctx, { script: 'delete_data("doc")', caller: other, canWrite: false }), { type: 'error', code: 'FORBIDDEN' })
  t.match(await run(pool, ctx, { script: 'load_data("doc")', caller: other, canWrite: false }), { type: 'ok', output: '1' }, 'reads are allowed')
})

t.test('a promise the script rejects and never handles ends the run with SCRIPT_ERROR naming the reason', async (t) => {
  const ctx = context(t.testdir())
  const cases: [string, string][] = [
    ['Promise.reject(new Error("boom")); 1', 'Unhandled promise rejection: Error: boom'],
    ['(async () => { await null; throw new TypeError("later") })(); 2', 'Unhandled promise rejection: TypeError: later'],
    ['Promise.reject(42); 3', 'Unhandled promise rejection: 42'],
    [`Promise.reject("${'x'.repeat(300)}"); 5`, `Unhandled promise rejection: ${'x'.repeat(200)}…`],
  ]
  for (const [script, message] of cases) {
    const r = await run(pool, ctx, script)
    t.equal(r.type === 'error' && r.code, 'SCRIPT_ERROR', script)
    t.equal(r.type === 'error' && r.message, message, `${script}: message`)
  }
  // An object that is not an Error crosses as the isolate's own description of it, never its contents.
  const object = await run(pool, ctx, 'Promise.reject({ secret: "s3cr3t" }); 4')
  t.match(object.type === 'error' && object.message, /^Unhandled promise rejection: /)
  t.notMatch(object.type === 'error' && object.message, /s3cr3t/)
  // Writes made before the rejection stay made: the run's work happened; only its answer is an error.
  t.equal((await run(pool, ctx, 'save_data("before", 2); Promise.reject(new Error("x"))')).type, 'error')
  const before = await run(pool, ctx, 'load_data("before")')
  t.equal(before.type === 'ok' && before.output, '2', 'a write made before the unhandled rejection stays')
  // A handled rejection is not one, and the context runs on after an unhandled one, its data intact.
  t.equal((await run(pool, ctx, 'save_data("kept", 1); Promise.reject(new Error("late")).catch(() => {}); 6')).type, 'ok')
  const after = await run(pool, ctx, 'load_data("kept")')
  t.equal(after.type === 'ok' && after.output, '1', 'the context serves its data after an unhandled rejection')
})

t.test('a script that is not well-formed Unicode reaches the isolate as written', async (t) => {
  const ctx = context(t.testdir())
  // The script's text holds a lone surrogate itself (not an escape): it has no UTF-8 form.
  const r = await run(pool, ctx, "['\ud800'.charCodeAt(0), '\udfff'.length, '\ud83d\ude00'.codePointAt(0)]")
  t.same(r.type === 'ok' && r.result, [0xd800, 1, 0x1f600])
})

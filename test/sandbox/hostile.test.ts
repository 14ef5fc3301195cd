import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { SandboxPool } from '../../src/sandbox/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { context, run } from '../helpers/sandbox.js'

const dir = new URL('../fixtures/hostile/', import.meta.url)
const corpus = readdirSync(dir)
  .filter((f) => f.endsWith('.js'))
  .sort()
  .map((file) => {
    const text = readFileSync(new URL(file, dir), 'utf8')
    const expect = /^\/\/ expect: (.+)$/m.exec(text)?.[1]?.split('|') ?? []
    return { file, text, expect }
  })

// The probe a bystander runs after each hostile script: the realm must be exactly as before.
const PROBE = `[typeof leak, ({}).polluted, Object.isFrozen(Object.prototype), Object.isFrozen(globalThis),
  [1, 2].push(3), JSON.stringify({ a: 1 }), typeof Date.now(), Object.keys(globalThis).length, 6 * 7].join()`

const pool = new SandboxPool({ processes: 1 })

await pool.start()
t.teardown(() => pool.close())

t.test('hostile script corpus', async (t) => {
  t.ok(corpus.length >= 25, `at least 25 scripts (${corpus.length})`)
  const bystander = context(t.testdir(), generateKeyPair().publicKey)
  const baseline = await run(pool, bystander, PROBE)
  t.equal(baseline.type, 'ok')
  for (const { file, text, expect } of corpus) {
    t.ok(expect.length > 0, `${file} declares its expected outcome`)
    const attacker = { ...context(t.testdir()), limits: { timeoutMs: 300, cpuMs: 300 } }
    const outcome = await run(pool, attacker, { script: text, caller: generateKeyPair().publicKey })
    const got = outcome.type === 'ok' ? 'ok' : outcome.code
    t.ok(expect.includes(got), `${file}: ${got}${outcome.type === 'error' ? ` (${outcome.message})` : ''}`)
    const after = await run(pool, bystander, PROBE)
    t.same(after.type === 'ok' && after.output, baseline.type === 'ok' && baseline.output, `${file}: the pool serves the next run, pristine`)
  }
})

t.test('hostile outputs leak nothing of the host', async (t) => {
  const ctx = context(t.testdir())
  const r = await run(pool, ctx, 'Object.getOwnPropertyNames(globalThis).filter((n) => /host|ivm|isolated|require|process/i.test(n))')
  t.match(r, { type: 'ok', output: '[]' })
  const listed = await run(pool, ctx, "save_data('..%2f..%2fescape', 1); list_data()")
  t.match(listed, { type: 'ok', output: '["..%2f..%2fescape"]' }, 'percent sequences are literal characters of a name')
})

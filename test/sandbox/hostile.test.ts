import t, { type Test } from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { SandboxPool } from '../../src/sandbox/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { isCirclesError } from '../../src/errors/index.js'
import { OPEN_CALLS } from '../helpers/calls.js'
import { startNode } from '../helpers/node.js'
import { context, run } from '../helpers/sandbox.js'

/**
 * Each fixture opens with `// key: value` lines:
 * - `expect`: the outcome codes it may end with (`ok` for a success); more than one needs a `why`;
 * - `output`: the exact output of a success, the value that would reveal a leak;
 * - `message`: a regular expression the error message must match (the specific refusal);
 * - `after` / `after-output`: a script run next in the same context, and its exact output (what
 *   the hostile run tried to leave behind);
 * - `after-in` (calls only): the context `after` runs in, when not the attacker's.
 */
function readCorpus(dir: URL) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((file) => {
      const text = readFileSync(new URL(file, dir), 'utf8')
      const header = (key: string) => new RegExp(`^// ${key}: (.+)$`, 'm').exec(text)?.[1]
      return {
        file,
        text,
        expect: header('expect')?.split('|') ?? [],
        why: header('why'),
        output: header('output'),
        message: header('message'),
        after: header('after'),
        afterOutput: header('after-output'),
        afterIn: header('after-in'),
      }
    })
}

type Fixture = ReturnType<typeof readCorpus>[number]

/** The header checks every fixture passes before it runs. */
function checkHeaders(t: Test, { file, expect, why, output, message }: Fixture): void {
  t.ok(expect.length > 0, `${file} declares its expected outcome`)
  t.ok(expect.length === 1 || why !== undefined, `${file} says why it accepts one of several outcomes`)
  t.ok(
    (!expect.includes('ok') || output !== undefined) && (expect.every((e) => e === 'ok') || message !== undefined),
    `${file} asserts a specific value: the output of a success, the message of an error`,
  )
}

const corpus = readCorpus(new URL('../fixtures/hostile/', import.meta.url))
/** Scripts that call other contexts: `$A` is the attacker's context, `$B` and `$C` others it may call. */
const callCorpus = readCorpus(new URL('../fixtures/hostile/calls/', import.meta.url))

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
  t.match(baseline, { type: 'ok', output: /^undefined,,true,true,3,\{"a":1\},number,\d+,42$/ }, 'the probe itself: no leak, frozen, working built-ins')
  for (const fixture of corpus) {
    const { file, text, expect, output, message, after, afterOutput } = fixture
    checkHeaders(t, fixture)
    const attacker = { ...context(t.testdir()), limits: { timeoutMs: 300, cpuMs: 300 } }
    const outcome = await run(pool, attacker, { script: text, caller: generateKeyPair().publicKey })
    const got = outcome.type === 'ok' ? 'ok' : outcome.code
    t.ok(expect.includes(got), `${file}: ${got}${outcome.type === 'error' ? ` (${outcome.message})` : ''}`)
    if (outcome.type === 'ok') t.equal(outcome.output, output, `${file}: output`)
    else t.match(outcome.message, new RegExp(message!), `${file}: message`)
    if (after !== undefined) {
      t.match(await run(pool, attacker, after), { type: 'ok', output: afterOutput }, `${file}: then \`${after}\` in the same context gives ${afterOutput}`)
    }
    t.same(readdirSync(attacker.dbPath).filter((name) => name !== attacker.circle), [], `${file}: nothing written outside the namespace`)
    const afterProbe = await run(pool, bystander, PROBE)
    t.same(afterProbe.type === 'ok' && afterProbe.output, baseline.type === 'ok' && baseline.output, `${file}: the pool serves the next run, pristine`)
  }
})

t.test('hostile outputs leak nothing of the host', async (t) => {
  const ctx = context(t.testdir())
  const r = await run(pool, ctx, 'Object.getOwnPropertyNames(globalThis).filter((n) => /host|ivm|isolated|require|process/i.test(n))')
  t.match(r, { type: 'ok', output: '[]' })
  const listed = await run(pool, ctx, "save_data('..%2f..%2fescape', 1); list_data()")
  t.match(listed, { type: 'ok', output: '["..%2f..%2fescape"]' }, 'percent sequences are literal characters of a name')
})

t.test('hostile calls corpus', async (t) => {
  t.ok(callCorpus.length >= 3, `a call storm, a cycle through three contexts, calls never awaited (${callCorpus.length})`)
  const { node } = await startNode(t)
  const attacker = generateKeyPair().publicKey
  const play = async (pubkey: string, script: string) => {
    try {
      const { output } = await node.play(pubkey, { caller: attacker, script })
      return { code: 'ok', output, message: '' }
    } catch (error) {
      if (!isCirclesError(error)) throw error
      return { code: error.code as string, output: undefined, message: error.message }
    }
  }
  const bystander = generateKeyPair().publicKey
  await node.peers.spawnPeer({ pubkey: bystander })
  const baseline = await play(bystander, PROBE)
  for (const fixture of callCorpus) {
    const { file, text, expect, output, message, after, afterOutput, afterIn } = fixture
    checkHeaders(t, fixture)
    // Contexts of its own for each script, which any authenticated caller may call out of.
    // A script that must be cut off gets a short limit, so that cutting it costs little; one that
    // ends by itself gets a limit far above its need, so that a loaded machine cannot cut it first.
    const limitMs = expect.includes('ok') || expect.every((code) => code.startsWith('CALL_')) ? 30_000 : 300
    const keys: Record<string, string> = {}
    for (const name of ['A', 'B', 'C']) {
      keys[name] = generateKeyPair().publicKey
      await node.peers.spawnPeer({ pubkey: keys[name], policy: OPEN_CALLS, limits: { timeoutMs: limitMs, cpuMs: limitMs } })
    }
    const script = text.replace(/\$([ABC])/g, (_, name: string) => keys[name]!)
    const outcome = await play(keys['A']!, script)
    t.ok(expect.includes(outcome.code), `${file}: ${outcome.code}${outcome.code === 'ok' ? '' : ` (${outcome.message})`}`)
    if (outcome.code === 'ok') t.equal(outcome.output, output, `${file}: output`)
    else t.match(outcome.message, new RegExp(message!), `${file}: message`)
    if (after !== undefined) {
      const where = afterIn ?? 'A'
      t.match(await play(keys[where]!, after), { code: 'ok', output: afterOutput }, `${file}: then \`${after}\` in ${where} gives ${afterOutput}`)
    }
    t.same(await play(bystander, PROBE), baseline, `${file}: the node serves the next run, pristine`)
  }
  t.equal(node.peers.router.workflows, 0, 'no workflow holds a run budget any more')
})

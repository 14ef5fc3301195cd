/**
 * Finding 4 of the security review, and the search for engine state of its kind: runs of every
 * circle on a sandbox thread share one isolate and one context, so anything the engine keeps
 * isolate-wide — and a script can reach — could carry one tenant's doing into another's run.
 * V8's `Symbol.for` registry was such a table: never freed, it let five anonymous runs starve the
 * vault owner's next script (SCRIPT_MEMORY).
 *
 * Each check below is a script pair over the protocol: a run of the attacker's circle does
 * something, then a run of the victim's circle — on the same host, isolate and context — looks.
 * docs/security.md lists what was found and why what remains shared is safe.
 */
import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'

/** Allocates ~40 MB (100 arrays of 50,000 small integers): fits a 64 MiB heap only if little else is retained. */
const ORDINARY = '{ const a = []; for (let i = 0; i < 100; i++) a.push(new Array(50000).fill(i)); a.length }'

t.test('engine state shared by the circles of one sandbox host', async (t) => {
  const { node, url } = await startNode(t)
  t.equal(node.sandbox.size, 1, 'one host: every circle below runs in the same isolate and context')
  const attackerKey = generateKeyPair().publicKey
  const victimKey = generateKeyPair().publicKey
  // The attacker's circle gets time to spare: what is measured is what its runs leave behind.
  await node.peers.spawnPeer({ pubkey: attackerKey, policy: { run: 'anonymous' }, limits: { timeoutMs: 10_000, cpuMs: 10_000 } })
  await node.peers.spawnPeer({ pubkey: victimKey, policy: { run: 'anonymous' } })
  const attacker = await openSocket(`${url}${attackerKey}`)
  const victim = await openSocket(`${url}${victimKey}`)
  t.teardown(() => {
    attacker.close()
    victim.close()
  })
  const play = async (socket: RawSocket, script: string): Promise<{ ok: boolean; value: unknown; code?: string; message?: string }> => {
    const answer = await socket.call('play', { script })
    if (answer.result !== undefined) return { ok: true, value: 'result' in answer.result ? answer.result.result : answer.result.output }
    return { ok: false, value: undefined, code: answer.error.data.code, message: answer.error.message }
  }

  t.test('finding 4: Symbol.for', async (t) => {
    const attack = (r: number) => `for (let i = 0; i < 40000; i++) Symbol.for('s'.repeat(200) + ${r} + ':' + i); 1`
    for (let r = 0; r < 5; r++) {
      t.match(await play(attacker, attack(r)), { ok: false, code: 'SCRIPT_ERROR', message: /^RangeError: Symbol\.for: too many registered symbols in one run/ }, `attack run ${r + 1}: refused past the per-run bound`)
    }
    t.match(await play(victim, ORDINARY), { ok: true, value: 100 }, "the victim's next ordinary script runs (SCRIPT_MEMORY when V8's registry kept 60 MB of names)")
    const caught = `let n = 0; try { for (;;) { Symbol.for('k' + n); n++ } } catch (e) { [e instanceof RangeError, n] }`
    t.same((await play(attacker, caught)).value, [true, 10000], 'a RangeError inside the run, catchable, after 10,000 registrations')
    for (let r = 0; r < 5; r++) await play(attacker, `for (let i = 0; i < 10000; i++) Symbol.for('t'.repeat(200) + ${r} + ':' + i); 1`)
    t.match(await play(victim, ORDINARY), { ok: true, value: 100 }, 'runs that stay under the bound leave nothing behind either')
    t.same(
      (await play(victim, `const s = Symbol.for('app.key'); [Symbol.keyFor(s), Symbol.for('app.key') === s, Symbol.keyFor(Symbol('app.key')) === undefined, Symbol.keyFor(Symbol.iterator) === undefined, s.description]`)).value,
      ['app.key', true, true, true, 'app.key'],
      'Symbol.for and Symbol.keyFor work as specified within a run',
    )
    t.match(await play(victim, 'Symbol.keyFor("not a symbol")'), { ok: false, message: /^TypeError: not a symbol is not a symbol/ })
    t.same((await play(attacker, 'Symbol.for("shared?") === Symbol.for("shared?")')).value, true)
  })

  // Three runs of each allocate ~30 MB: retained, they and the victim's 40 MB would not fit 64 MiB.
  t.test('engine caches that hold memory are weak: three runs of each leave the victim its heap', async (t) => {
    const attacks: [string, (r: number) => string][] = [
      ['internalized strings (property keys)', (r) => `{ const o = {}; for (let i = 0; i < 40000; i++) o['s'.repeat(200) + ${r} + ':' + i] = 1; 1 }`],
      ['the eval compilation cache', (r) => `for (let i = 0; i < 200; i++) eval('"' + 'x'.repeat(50000) + ${r} + ':' + i + '"'); 1`],
      ['the Function constructor cache', (r) => `for (let i = 0; i < 200; i++) new Function('return "' + 'x'.repeat(50000) + ${r} + ':' + i + '"'); 1`],
      ['the RegExp compilation cache', (r) => `for (let i = 0; i < 2000; i++) new RegExp('a'.repeat(1000) + ${r} + ':' + i).test('b'); 1`],
      ['template objects', (r) => `for (let i = 0; i < 2000; i++) eval('(s => s)\`' + 'x'.repeat(5000) + ${r} + ':' + i + '\`'); 1`],
    ]
    for (const [what, attack] of attacks) {
      for (let r = 0; r < 3; r++) {
        const started = performance.now()
        const outcome = await play(attacker, attack(r))
        t.match(outcome, { ok: true }, `${what}: attack run ${r + 1} ${outcome.code ?? ""} ${outcome.message ?? ""}`)
        if (r === 0) t.comment(`${what}: ${(performance.now() - started).toFixed(0)} ms a run`)
      }
      t.match(await play(victim, ORDINARY), { ok: true, value: 100 }, `${what}: the victim's ordinary script runs`)
    }
  })

  t.test('state a script can set, as another circle sees it afterwards', async (t) => {
    const checks: [string, string, string][] = [
      ['RegExp legacy statics', '/(s3cret)-(\\d+)/.exec("s3cret-42"); "x".replace(/x/, "y"); 1', '["$1", "$2", "$_", "$&", "input", "lastMatch", "lastParen", "leftContext", "rightContext"].filter((k) => k in RegExp)'],
      ['Error.stackTraceLimit', 'try { Error.stackTraceLimit = 0 } catch {} 1', 'Error.stackTraceLimit'],
      ['Error.prepareStackTrace', 'try { Error.prepareStackTrace = () => "pwned" } catch {} 1', '[typeof Error.prepareStackTrace, typeof new Error("x").stack]'],
      ['Error.captureStackTrace on shared objects', 'for (const o of [globalThis, Object.prototype, Error]) try { Error.captureStackTrace(o) } catch {} 1', '["stack" in globalThis, "stack" in Object.prototype, Object.getOwnPropertyNames(Error).includes("stack")]'],
      ['Array.prototype[Symbol.unscopables]', 'try { Array.prototype[Symbol.unscopables].leak = 1 } catch {} try { delete Array.prototype[Symbol.unscopables].flat } catch {} 1', '[Object.isFrozen(Array.prototype[Symbol.unscopables]), "leak" in Array.prototype[Symbol.unscopables], Array.prototype[Symbol.unscopables].flat]'],
      ['Intl defaults and caches', 'new Intl.DateTimeFormat("ja-JP-u-ca-japanese", { timeZone: "Asia/Tokyo" }).format(0); (1234.5).toLocaleString("de-DE"); "a".localeCompare("b", "sv"); 1', '[Intl.DateTimeFormat().resolvedOptions().timeZone, Intl.DateTimeFormat().resolvedOptions().locale, (1234.5).toLocaleString(), new Date(0).toLocaleString()]'],
      ['removed capabilities', 'try { globalThis.Atomics = {} } catch {} 1', '[typeof Atomics, typeof SharedArrayBuffer, typeof WeakRef, typeof FinalizationRegistry, typeof WebAssembly, typeof console]'],
      ['template objects are frozen', 'const tag = (s) => { try { s.leak = 1 } catch {} return s }; tag`shared`; 1', 'const tag = (s) => [Object.isFrozen(s), Object.isFrozen(s.raw), s.leak === undefined]; tag`shared`'],
      ['array species protector (performance only)', 'const a = []; a.constructor = function Evil() {}; 1', '[[1, 2, 3].map((x) => x * 2), [1, 2, 3].filter((x) => x > 1).constructor === Array]'],
      ['number and string caches', 'for (let i = 0; i < 1e5; i++) String(i + 0.5); 1', '[String(1.5), (255).toString(16), Number("0x10")]'],
      ['the random generator', 'for (let i = 0; i < 1e4; i++) Math.random(); 1', 'typeof Math.random()'],
    ]
    for (const [what, set, look] of checks) {
      const before = await play(victim, look)
      t.equal(before.ok, true, `${what}: the probe runs (${before.message ?? ''})`)
      const attack = await play(attacker, set)
      t.equal(attack.ok, true, `${what}: the attacker's run completes (${attack.message ?? ''})`)
      const after = await play(victim, look)
      t.same(after, before, `${what}: the victim sees the same as before (${JSON.stringify(after.value)})`)
    }
  })

  t.test('what the probes above establish about their values', async (t) => {
    t.same((await play(victim, '["$1", "input", "lastMatch"].filter((k) => k in RegExp)')).value, [], 'no legacy RegExp statics at all')
    t.same((await play(victim, 'Error.stackTraceLimit')).value, 10)
    t.same((await play(victim, '[Object.isFrozen(Error), Object.isFrozen(Array.prototype[Symbol.unscopables])]')).value, [true, true])
    t.same((await play(victim, '[typeof Atomics, typeof SharedArrayBuffer, typeof WeakRef, typeof FinalizationRegistry]')).value, ['undefined', 'undefined', 'undefined', 'undefined'])
    t.match(await play(victim, 'Error.captureStackTrace(Object.prototype)'), { ok: false, code: 'SCRIPT_ERROR', message: /^TypeError/ }, 'capturing a stack onto a shared object throws')
    t.same((await play(victim, 'const o = {}; Error.captureStackTrace(o); typeof o.stack')).value, 'string', 'onto a run’s own object it works')
  })
})

import type { Random } from './random.js'

/**
 * Scripts for the sandbox fuzzer, made from the hostile corpus: two scripts combined or spliced,
 * numbers perturbed, names swapped, wrapped in try/catch, async functions, promise chains,
 * getters or proxies — so that combinations no one wrote by hand reach the realm.
 */

const NUMBERS = ['0', '1', '-1', '2', '7', '1e3', '1e6', '1e8', '2 ** 28', '2 ** 30', '0.5', 'NaN', 'Infinity', '-0', '65536', '4294967295']
const NAMES = [
  'globalThis', 'Object.prototype', 'Function.prototype', 'Array.prototype', 'Symbol', 'RegExp', 'Error', 'Math', 'JSON', 'Promise',
  'Reflect', 'Proxy', 'print', 'load_data', 'save_data', 'list_data', 'delete_data', 'crypto', 'Intl', 'Date', 'eval', 'Function',
]
const SNIPPETS = [
  'Symbol.for("x" + Math.random())',
  'print("€".repeat(100))',
  'save_data("f/" + Math.random(), { a: [1, 2, 3] })',
  'list_data("", { limit: 2 })',
  'load_data("../x")',
  'crypto.getRandomValues(new Uint8Array(16))',
  'Object.getOwnPropertyNames(globalThis).length',
  '/(a+)+$/.test("aaaaaaaaaaaaaaaaaaaaab")',
  'new Proxy({}, { get: () => 1 })',
  'Error.captureStackTrace({})',
  '"\\ud800".repeat(1000)',
  'JSON.parse("[".repeat(1000) + "]".repeat(1000))',
  '[].constructor.constructor("return this")()',
  'Promise.resolve().then(() => { for (;;) {} })',
  '(async () => { for (;;) await null })()',
]

/** A line of a script without its `// expect:`-style header comments. */
function body(script: string): string {
  return script
    .split('\n')
    .filter((line) => !line.startsWith('//'))
    .join('\n')
    .trim()
}

export function mutateScript(corpus: readonly string[], random: Random): string {
  const a = body(random.pick(corpus))
  const b = body(random.pick(corpus))
  switch (random.int(10)) {
    case 0:
      return `${a}\n;\n${b}`
    case 1: {
      const cut = (s: string) => random.int(s.length + 1)
      return a.slice(0, cut(a)) + b.slice(cut(b))
    }
    case 2:
      return a.replace(/\b\d+(e\d+)?\b/g, () => random.pick(NUMBERS))
    case 3:
      return a.replace(new RegExp(`\\b(${NAMES.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})\\b`), () => random.pick(NAMES))
    case 4:
      return `try { ${a} } catch (e) { [String(e), typeof e] }`
    case 5:
      return `(async () => { await null; ${random.chance(0.5) ? 'return ' : ''}${a} })()`
    case 6:
      return `Promise.resolve().then(() => { ${a} }); ${b}`
    case 7:
      return `({ get x() { return (${random.pick(SNIPPETS)}) }, toJSON() { return [${random.pick(SNIPPETS)}] } })`
    case 8:
      return `${random.pick(SNIPPETS)};\n${a}`
    default:
      return `const f = () => { ${a} }; try { f() } catch {} ${random.pick(SNIPPETS)}`
  }
}

import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'acorn'
import { fullAncestor } from 'acorn-walk'
import { ensureBrowserBundle } from '../helpers/browser-build.js'

// Names that exist in Node and not in browsers: code reaching for them would break in a page.
const NODE_GLOBALS = new Set(['process', 'Buffer', 'require', 'module', 'exports', 'global', '__dirname', '__filename', 'setImmediate'])

/** The module's imports, and its references to Node globals. */
function scan(source: string): { imports: string[]; globals: string[] } {
  const ast = parse(source, { ecmaVersion: 'latest', sourceType: 'module' })
  const imports: string[] = []
  const globals: string[] = []
  fullAncestor(ast, (node: any, _state: unknown, ancestors: any[]) => {
    if (node.type === 'ImportDeclaration' || node.type === 'ExportAllDeclaration' || (node.type === 'ExportNamedDeclaration' && node.source)) {
      imports.push(node.source.value)
    }
    if (node.type === 'ImportExpression') imports.push(node.source.type === 'Literal' ? node.source.value : '<computed>')
    if (node.type !== 'Identifier' || !NODE_GLOBALS.has(node.name)) return
    const parent = ancestors[ancestors.length - 2]
    // `x.process`, `{ process: … }` and `process() {}` name properties, not the global.
    if (parent?.type === 'MemberExpression' && parent.property === node && !parent.computed) return
    if (['Property', 'MethodDefinition', 'PropertyDefinition'].includes(parent?.type) && parent.key === node && !parent.computed) return
    globals.push(`${node.name} at ${node.start}`)
  })
  return { imports, globals }
}

t.test('the scan finds what it looks for', async (t) => {
  const found = scan('import { WebSocket } from "ws"; const x = { process: 1 }; x.process; export const e = process.env.X ?? Buffer.from("a") ?? import("node:fs")')
  t.same(found.imports, ['ws', 'node:fs'])
  t.same(found.globals.map((g) => g.split(' ')[0]), ['process', 'Buffer'])
})

t.test('the browser bundle has no ws, no node: import and no Node global', async (t) => {
  const source = readFileSync(ensureBrowserBundle(), 'utf8')
  const { imports, globals } = scan(source)
  t.same(imports, [], 'everything is bundled: no import of ws, node: or anything else')
  t.same(globals, [], 'no reference to a Node global')
  t.notMatch(source, /["']node:/, 'no node: specifier, even in a string')
  t.match(source, /export\s*\{[^}]*\bCirclesClient\b/, 'exports the client')
  t.match(source, /\beip1193Signer\b/)
})

#!/usr/bin/env node
// The share of src files (not index.ts doors) whose exports some test uses directly: a test file
// under test/ imports one of the file's exported names, from the file itself or through the
// index.ts doors that re-export it (followed to the file that defines the name). A test helper
// counts as a test. Files that export nothing are left out.
//
//   node scripts/tested-exports.mjs             # the work tree
//   node scripts/tested-exports.mjs --rev REV   # a commit, read through git
//   node scripts/tested-exports.mjs --list      # also list the untested files
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

const args = process.argv.slice(2)
const rev = args.includes('--rev') ? args[args.indexOf('--rev') + 1] : undefined
const list = args.includes('--list')
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim()

function files(dir) {
  if (rev !== undefined) {
    const out = execFileSync('git', ['ls-tree', '-r', '--name-only', rev, dir], { cwd: root, encoding: 'utf8' })
    return out.split('\n').filter(Boolean)
  }
  const found = []
  const walk = (d) => {
    for (const name of readdirSync(join(root, d))) {
      const path = join(d, name)
      if (statSync(join(root, path)).isDirectory()) walk(path)
      else found.push(path)
    }
  }
  walk(dir)
  return found
}

function read(path) {
  if (rev !== undefined) return execFileSync('git', ['show', `${rev}:${path}`], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 })
  return readFileSync(join(root, path), 'utf8')
}


const sources = files('src').filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))
const doors = new Set(sources.filter((p) => p.endsWith('/index.ts') || p === 'src/index.ts'))
const modules = sources.filter((p) => !doors.has(p))
const text = new Map(sources.map((p) => [p, read(p)]))
const resolve = (from, spec) => normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts')

/** Names a module defines and exports itself. */
function ownExports(path) {
  const names = new Set()
  const source = text.get(path) ?? ''
  for (const m of source.matchAll(/^export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(?:function\*?|class|const|let|var|interface|type|enum)\s+([A-Za-z_$][\w$]*)/gm)) names.add(m[1])
  for (const m of source.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}(?!\s*from)/gm)) {
    for (const part of m[1].split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim()
      if (name) names.add(name)
    }
  }
  return names
}

/** The module that defines `name` as exported by `path` (a door or a module), or undefined. */
function origin(path, name, seen = new Set()) {
  if (seen.has(path) || !text.has(path)) return undefined
  seen.add(path)
  if (!doors.has(path) && ownExports(path).has(name)) return path
  const source = text.get(path)
  for (const m of source.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    for (const part of m[1].split(',')) {
      const [inner, outer] = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).map((x) => x.trim())
      if ((outer ?? inner) === name) return origin(resolve(path, m[2]), inner, seen)
    }
  }
  for (const m of source.matchAll(/export\s+\*\s+from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const found = origin(resolve(path, m[1]), name, seen)
    if (found !== undefined) return found
  }
  return undefined
}

const exporting = modules.filter((p) => ownExports(p).size > 0)
const tests = files('test').filter((p) => /\.(ts|mts|mjs|js)$/.test(p))
const used = new Set()
for (const test of tests) {
  const source = read(test)
  // Named imports, and a helper's named re-exports (`export { a } from '…'`).
  for (const m of source.matchAll(/(?:import|export)\s+(?:type\s+)?(?:[\w$]+\s*,\s*)?\{([^}]*)\}\s*from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = resolve(test, m[2])
    if (!text.has(target)) continue
    for (const part of m[1].split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]?.trim()
      const from = name ? origin(target, name) : undefined
      if (from !== undefined) used.add(from)
    }
  }
  // A namespace or dynamic import of a module itself uses it.
  for (const m of source.matchAll(/(?:import\s+\*\s+as\s+[\w$]+\s+from\s*|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = resolve(test, m[1])
    if (text.has(target) && !doors.has(target)) used.add(target)
  }
}

const tested = exporting.filter((p) => used.has(p))
const share = exporting.length === 0 ? 0 : tested.length / exporting.length
console.log(`${tested.length} of ${exporting.length} non-index src files with exports have an export a test uses: ${(share * 100).toFixed(1)}%${rev ? ` (at ${rev})` : ''}`)
if (list) for (const p of exporting.filter((p) => !used.has(p)).sort()) console.log(`  untested: ${relative('.', p)}`)

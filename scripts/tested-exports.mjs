#!/usr/bin/env node
// The share of src files (not index.ts doors) whose exports some test imports directly: a test
// file under test/ that imports (or dynamically imports, or re-exports from) that very file, not
// its folder's index.ts. Files that export nothing are left out.
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

const sources = files('src').filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('/index.ts'))
const exporting = sources.filter((p) => /^export /m.test(read(p)))
const tests = files('test').filter((p) => /\.(ts|mts|mjs|js)$/.test(p))

const imported = new Set()
const specifier = /(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g
for (const test of tests) {
  for (const match of read(test).matchAll(specifier)) {
    const target = normalize(join(dirname(test), match[1])).replace(/\.js$/, '.ts')
    imported.add(target)
  }
}

const tested = exporting.filter((p) => imported.has(p))
const share = exporting.length === 0 ? 0 : tested.length / exporting.length
console.log(`${tested.length} of ${exporting.length} non-index src files with exports are imported directly by a test: ${(share * 100).toFixed(1)}%${rev ? ` (at ${rev})` : ''}`)
if (list) for (const p of exporting.filter((p) => !imported.has(p)).sort()) console.log(`  untested: ${relative('.', p)}`)

/**
 * positiveIntegerOption and VERSION: what an option accepts and how a refusal names it; the
 * version is the package's own.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { positiveIntegerOption, VERSION } from '../../src/config/index.js'

t.test('a positive integer passes; undefined falls back', async (t) => {
  t.equal(positiveIntegerOption(7, 3, 'threads'), 7)
  t.equal(positiveIntegerOption(undefined, 3, 'threads'), 3)
  t.equal(positiveIntegerOption(1, 3, 'threads'), 1)
  t.equal(positiveIntegerOption(Number.MAX_SAFE_INTEGER, 3, 'threads'), Number.MAX_SAFE_INTEGER)
})

t.test('anything else is INVALID_OPTION naming the option', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '4' as unknown as number]) {
    t.throws(() => positiveIntegerOption(bad, 3, 'limits.playsPerSecond'), { code: 'INVALID_OPTION', message: 'options.limits.playsPerSecond must be a positive integer' }, String(bad))
  }
  t.throws(() => positiveIntegerOption(undefined, 0, 'threads'), { code: 'INVALID_OPTION' }, 'a bad fallback is refused too')
})

t.test('VERSION is the version in package.json', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version)
  t.match(VERSION, /^\d+\.\d+\.\d+/)
})

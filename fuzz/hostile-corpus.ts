import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The scripts of the hostile corpus (test/fixtures/hostile), from dist/fuzz/ or fuzz/. */
export function hostileCorpus(): string[] {
  const here = fileURLToPath(new URL('.', import.meta.url))
  const dir = join(here, here.includes('/dist/') ? '../../test/fixtures/hostile' : '../test/fixtures/hostile')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
}

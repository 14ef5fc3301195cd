import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package's version, read from the nearest package.json above this module (src/ or dist/src/). */
export const VERSION: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'package.json')
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === '@circles-runtime/circles' && pkg.version !== undefined) return pkg.version
    }
    dir = dirname(dir)
  }
  return '0.0.0'
})()

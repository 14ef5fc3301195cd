import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BROWSER_BUNDLE = join(ROOT, 'dist/browser/circles-client.js')

/** The client's browser bundle, built with the package's own script when a lone test file runs before `npm run build`. */
export function ensureBrowserBundle(): string {
  if (!existsSync(BROWSER_BUNDLE)) execFileSync('npm', ['run', '--silent', 'build:browser'], { cwd: ROOT, stdio: 'inherit' })
  return BROWSER_BUNDLE
}

/**
 * The URL of a worker module next to `base`. Under the TypeScript loader used by the tests the
 * sources are `.ts`; in the built package they are `.js`.
 */
export function workerUrl(base: string, name: string): string {
  const ext = base.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./${name}${ext}`, base).href
}

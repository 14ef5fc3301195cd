import { readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** A module to start in a worker thread or child process, and the node flags to start it with. */
export interface WorkerModule {
  readonly url: string
  /** Flags for a child process running it. */
  readonly execArgv: readonly string[]
  /** Flags for a worker thread running it (`undefined`: inherit this process's). */
  readonly threadExecArgv: string[] | undefined
  /**
   * The environment of a worker thread running it: this process's without `NODE_OPTIONS`. A
   * thread re-reads `NODE_OPTIONS` from its environment whatever its flags, and preloads named
   * there (an APM agent, a test runner's hooks) have no business in the sandbox or verifier
   * threads: tap's process-info hook patches require, and Node 20's require-of-ESM path was seen
   * to abort the whole process when that hook met a worker's ESM module.
   */
  readonly threadEnv: NodeJS.ProcessEnv
}

/** This process's environment without NODE_OPTIONS (see {@link WorkerModule.threadEnv}). */
function threadEnv(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _preloads, ...env } = process.env
  return env
}

/** Flags every Circles process needs (isolated-vm requires it on Node 20). */
const REQUIRED_FLAGS = ['--no-node-snapshot']

let freshBuild: boolean | undefined

function newest(dir: string, ext: string, pick: (a: number, b: number) => number, start: number): number {
  let value = start
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) value = newest(path, ext, pick, value)
    else if (entry.name.endsWith(ext)) value = pick(value, statSync(path).mtimeMs)
  }
  return value
}

/** Whether dist/src was built after the last change to src (checked once per process). */
function builtIsFresh(root: string): boolean {
  if (freshBuild === undefined) {
    try {
      const newestSource = newest(join(root, 'src'), '.ts', Math.max, 0)
      const oldestBuilt = newest(join(root, 'dist', 'src'), '.js', Math.min, Number.POSITIVE_INFINITY)
      freshBuild = oldestBuilt >= newestSource
    } catch {
      freshBuild = false
    }
  }
  return freshBuild
}

/**
 * The module `name` next to `base` (an `import.meta.url`). In the built package that is the `.js`
 * beside it, started with the flags Circles needs. Under a TypeScript loader (the tests), the
 * compiled twin in `dist/` is used when the build is up to date — a worker process or thread that
 * loads the TypeScript compiler first takes seconds to start — and the `.ts` source otherwise,
 * with this process's loader flags.
 */
export function workerModule(base: string, name: string): WorkerModule {
  if (!base.endsWith('.ts')) {
    const execArgv = process.execArgv.includes('--no-node-snapshot') ? process.execArgv : [...process.execArgv, ...REQUIRED_FLAGS]
    return { url: new URL(`./${name}.js`, base).href, execArgv, threadExecArgv: undefined, threadEnv: threadEnv() }
  }
  const here = fileURLToPath(base)
  const marker = `${sep}src${sep}`
  const at = here.lastIndexOf(marker)
  if (at >= 0) {
    const root = here.slice(0, at)
    const built = join(root, 'dist', relative(root, dirname(here)), `${name}.js`)
    if (builtIsFresh(root)) return { url: pathToFileURL(built).href, execArgv: REQUIRED_FLAGS, threadExecArgv: [], threadEnv: threadEnv() }
  }
  const execArgv = process.execArgv.includes('--no-node-snapshot') ? process.execArgv : [...process.execArgv, ...REQUIRED_FLAGS]
  return { url: new URL(`./${name}.ts`, base).href, execArgv, threadExecArgv: undefined, threadEnv: threadEnv() }
}

/** The URL of {@link workerModule}. */
export function workerUrl(base: string, name: string): string {
  return workerModule(base, name).url
}

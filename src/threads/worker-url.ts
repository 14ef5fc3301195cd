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
    else if (entry.name.endsWith(ext) || entry.name.endsWith(ext.replace('.', '.c'))) value = pick(value, statSync(path).mtimeMs)
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
 * beside it (`.cjs` for a thread entry), started with the flags Circles needs. Under a TypeScript
 * loader (the tests), the compiled twin in `dist/` is used when the build is up to date — a
 * worker process that loads the TypeScript compiler first takes seconds to start — and for a
 * process entry, the `.ts` source otherwise, with this process's loader flags.
 *
 * Thread pools start a CommonJS entry (each pool's `thread-entry.cts`): piscina require()s its
 * task file, and Node 20 aborts the whole process when a thread is terminated while require()
 * links an ES module. A thread entry is always the compiled one: a thread cannot load the
 * TypeScript sources through CommonJS without that same require() of ES modules, so a stale
 * build is an error that says to build.
 */
export function workerModule(base: string, name: string, format: 'esm' | 'commonjs' = 'esm'): WorkerModule {
  const built = format === 'esm' ? '.js' : '.cjs'
  if (!base.endsWith('.ts')) {
    const execArgv = process.execArgv.includes('--no-node-snapshot') ? process.execArgv : [...process.execArgv, ...REQUIRED_FLAGS]
    return { url: new URL(`./${name}${built}`, base).href, execArgv, threadExecArgv: undefined, threadEnv: threadEnv() }
  }
  const here = fileURLToPath(base)
  const marker = `${sep}src${sep}`
  const at = here.lastIndexOf(marker)
  if (at >= 0) {
    const root = here.slice(0, at)
    const twin = join(root, 'dist', relative(root, dirname(here)), `${name}${built}`)
    if (builtIsFresh(root)) return { url: pathToFileURL(twin).href, execArgv: REQUIRED_FLAGS, threadExecArgv: [], threadEnv: threadEnv() }
  }
  if (format === 'commonjs') {
    throw new Error(`${name}: the compiled dist/ is missing or older than src/; run \`npm run build\` (worker threads load the build)`)
  }
  const execArgv = process.execArgv.includes('--no-node-snapshot') ? process.execArgv : [...process.execArgv, ...REQUIRED_FLAGS]
  return { url: new URL(`./${name}.ts`, base).href, execArgv, threadExecArgv: undefined, threadEnv: threadEnv() }
}

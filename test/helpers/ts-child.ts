import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The loader the test runner itself uses to run TypeScript (tsx: esbuild, transpile only). */
const TS_IMPORT = `--import=${new URL('node_modules/tsx/dist/esm/index.mjs', `file://${ROOT}`).href}`

/** Node arguments that run a TypeScript file of this repository in a child process. */
export function tsNodeArgs(file: string, args: readonly string[] = []): string[] {
  return ['--no-node-snapshot', TS_IMPORT, file, ...args]
}

/**
 * The environment of such a child: this one without tap's NODE_OPTIONS (its coverage hooks
 * would follow the child and, under strace, add noise).
 */
export function tsChildEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _drop, ...env } = process.env
  return { ...env, ...extra }
}

/** Spawn `node <file>` for a TypeScript fixture of this repository. */
export function spawnTs(file: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, tsNodeArgs(file, args), { cwd: ROOT, env: tsChildEnv(), ...options })
}

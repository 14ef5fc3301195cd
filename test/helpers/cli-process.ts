import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LogLine } from './log-capture.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The built command line (`npm run build` first; npm test builds it). */
export const CLI = join(ROOT, 'dist/src/cli/main.js')

/** The built CLI running as a process of its own, its stdout read as JSON log lines. */
export interface CliProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Every stdout line parsed as JSON; a line that is not JSON is kept as `{ level: -1, msg: 'NOT JSON: …' }`. */
  readonly lines: LogLine[]
  stdout(): string
  stderr(): string
  /**
   * The first line matching, from line index `from` on, already written or to come. Rejects when
   * the process ends first, or after `timeoutMs` when one is given.
   */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>
  /** Resolves with the exit code and signal once the process has exited and its output is read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  alive(): boolean
}

/**
 * Run `circles <args>` (the built CLI) in its own process group, like a terminal session, stdout
 * piped (so JSON log lines). At teardown the whole group is killed if the process still runs,
 * then `afterExit` runs (e.g. removing the test's directory).
 */
export function spawnCli(
  t: { teardown(fn: () => unknown): void },
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly afterExit?: () => void },
): CliProcess {
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: options.env })
  // 'close', not 'exit': by then every line the node wrote has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  let running = true
  void exited.then(() => (running = false))
  t.teardown(async () => {
    if (running) {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // Already gone.
      }
      await exited
    }
    options.afterExit?.()
  })
  const lines: LogLine[] = []
  let out = ''
  let err = ''
  let partial = ''
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = []
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  child.stdout!.on('data', (c: Buffer) => {
    const text = c.toString()
    out += text
    const parts = (partial + text).split('\n')
    partial = parts.pop()!
    for (const part of parts) {
      if (part.trim() === '') continue
      let line: LogLine
      try {
        line = JSON.parse(part) as LogLine
      } catch {
        line = { level: -1, msg: `NOT JSON: ${part}` }
      }
      lines.push(line)
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.match(line)) waiters.splice(i, 1)[0]!.resolve(line)
    }
  })
  const waitFor = (match: (line: LogLine) => boolean, timeoutMs?: number, from = 0): Promise<LogLine> => {
    const found = lines.slice(from).find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined ? undefined : setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)), timeoutMs)
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      waiters.push(waiter)
      void exited.then(({ code, signal }) => {
        const i = waiters.indexOf(waiter)
        if (i < 0) return
        waiters.splice(i, 1)
        clearTimeout(timer)
        reject(new Error(`circles ${args[0]} exited (${code ?? signal}) without that log line; output:\n${`${err}\n${out}`.slice(-4000)}`))
      })
    })
  }
  return { child, pid: child.pid!, lines, stdout: () => out, stderr: () => err, waitFor, exited, alive: () => running }
}

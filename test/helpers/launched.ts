import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LogLine } from './log-capture.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The built command line (`npm run build` first). */
export const CLI = join(ROOT, 'dist/src/cli/main.js')

export interface LaunchedNode {
  readonly child: ChildProcess
  readonly dir: string
  readonly dbPath: string
  /** Every stdout line parsed as JSON (a line that is not JSON fails the launch). */
  readonly lines: LogLine[]
  stdout(): string
  stderr(): string
  /** The first line matching, from line index `from` on (default 0), already written or to come. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>
  mark(): number
  /** Resolves with the exit code and signal once the process has exited and its output is read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The start-up summary line (`serving N circle(s)…`). */
  readonly serving: LogLine
  /** The admin listener's URL. */
  readonly admin: string
  /** The `circle <name> served` line of each circle, by name. */
  readonly circles: Readonly<Record<string, LogLine & { url: string; public_key: string }>>
}

export interface LaunchOptions {
  /** The circles.json content (ports 0 unless a test needs one). */
  readonly circles: readonly Record<string, unknown>[]
  /** Files to write next to circles.json (init scripts). */
  readonly files?: Readonly<Record<string, string>>
  readonly args?: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  /** Resolve before start-up completes (for a launch expected to fail). */
  readonly waitForServing?: boolean
}

/**
 * `circles launch` as an operator runs it, stdout piped (so JSON log lines), in its own process
 * group like a terminal session, with its own directory. Killed (the whole group) at teardown if
 * it is still running.
 */
export async function launchCli(t: { teardown(fn: () => unknown): void }, options: LaunchOptions): Promise<LaunchedNode> {
  const dir = mkdtempSync(join(tmpdir(), 'circles-launched-'))
  const dbPath = join(dir, 'db')
  writeFileSync(join(dir, 'circles.json'), JSON.stringify(options.circles))
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), text)
  const args = ['launch', '--config', join(dir, 'circles.json'), '--db-path', dbPath, '--sandbox-processes', '1', '--admin-port', '0', ...(options.args ?? [])]
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  for (const name of ['CIRCLES_LOG_LEVEL', 'CIRCLES_TEST_FAULTS', 'CIRCLES_DB_PATH']) if (options.env?.[name] === undefined) delete env[name]
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env })
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
    rmSync(dir, { recursive: true, force: true })
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
      if (part === '') continue
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
  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> => {
    const found = lines.slice(from).find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)), timeoutMs)
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      waiters.push(waiter)
      void exited.then(() => {
        const i = waiters.indexOf(waiter)
        if (i < 0) return
        waiters.splice(i, 1)
        clearTimeout(timer)
        reject(new Error(`the node exited without that log line; stderr: ${err.slice(-2000)}`))
      })
    })
  }
  const base = {
    child,
    dir,
    dbPath,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitFor,
    mark: () => lines.length,
    exited,
  }
  if (options.waitForServing === false) return { ...base, serving: undefined as never, admin: '', circles: {} }
  const serving = await waitFor((line) => /^serving /.test(line.msg))
  const circles: Record<string, LogLine & { url: string; public_key: string }> = {}
  for (const line of lines) {
    if (typeof line['circle'] === 'string' && /^circle .* served( at .*)?$/.test(line.msg)) circles[line['circle']] = line as LogLine & { url: string; public_key: string }
  }
  return { ...base, serving, admin: serving['admin'] as string, circles }
}

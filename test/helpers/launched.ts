import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeKeyFile, type KeyPair } from '../../src/identity/index.js'
import { spawnCli } from './cli-process.js'
import type { LogLine } from './log-capture.js'

export { CLI, ROOT } from './cli-process.js'

/** A circle's `circle <name> served` log line: its URL and key (`publicKey` is `public_key`). */
export type LaunchedCircle = LogLine & { readonly url: string; readonly public_key: string; readonly publicKey: string }

/** The built `circles launch` running as a process of its own (run `npm run build` first). */
export interface LaunchedNode {
  readonly child: ChildProcess
  readonly pid: number
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
  readonly circles: Readonly<Record<string, LaunchedCircle>>
  /** The sandbox hosts' pids at start-up. */
  readonly hostPids: readonly number[]
  /** Memory figures of a process (default: the node's) from /proc/<pid>/status, in bytes (VmRSS, VmHWM = peak RSS). */
  memory(pid?: number): { readonly rss: number; readonly peak: number }
  /** Whether the process still runs. */
  alive(): boolean
}

export interface LaunchOptions {
  /** The circles.json content (ports 0 unless a test needs one). */
  readonly circles: readonly Record<string, unknown>[]
  /** Files to write next to circles.json (init scripts). */
  readonly files?: Readonly<Record<string, string>>
  /** Key pairs of circles by name, stored where launch finds them (the test knows the secret keys). */
  readonly keys?: Readonly<Record<string, KeyPair>>
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
  for (const [name, pair] of Object.entries(options.keys ?? {})) await writeKeyFile(join(dbPath, 'keys', `${name}.key`), pair)
  const args = ['launch', '--config', join(dir, 'circles.json'), '--db-path', dbPath, '--sandbox-processes', '1', '--admin-port', '0', ...(options.args ?? [])]
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  for (const name of ['CIRCLES_LOG_LEVEL', 'CIRCLES_TEST_FAULTS', 'CIRCLES_DB_PATH']) if (options.env?.[name] === undefined) delete env[name]
  const cli = spawnCli(t, args, { cwd: dir, env, afterExit: () => rmSync(dir, { recursive: true, force: true }) })
  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 30_000, from = 0) => cli.waitFor(match, timeoutMs, from)
  const { child, lines, stdout, stderr } = cli
  let running = true
  const exited = cli.exited.then((exit) => {
    running = false
    return exit
  })
  const base = {
    child,
    pid: child.pid!,
    dir,
    dbPath,
    lines,
    stdout,
    stderr,
    waitFor,
    mark: () => lines.length,
    exited,
    memory: (pid = child.pid!) => processMemory(pid),
    alive: () => running,
  }
  if (options.waitForServing === false) return { ...base, serving: undefined as never, admin: '', circles: {}, hostPids: [] }
  const serving = await waitFor((line) => /^serving /.test(line.msg), 60_000)
  const circles: Record<string, LaunchedCircle> = {}
  for (const line of lines) {
    if (typeof line['circle'] === 'string' && typeof line['url'] === 'string' && /^circle .* served( at .*)?$/.test(line.msg)) {
      circles[line['circle']] = { ...line, publicKey: String(line['public_key']) } as LaunchedCircle
    }
  }
  return { ...base, serving, admin: serving['admin'] as string, circles, hostPids: serving['sandbox_pids'] as number[] }
}

/** Read VmRSS and VmHWM of a process (bytes). */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

/**
 * launchCli with logs at info (what the tests that read the log expect), resolving once the
 * node serves.
 */
export function launchNode(t: { teardown(fn: () => unknown): void }, options: LaunchOptions): Promise<LaunchedNode> {
  return launchCli(t, { ...options, env: { CIRCLES_LOG_LEVEL: 'info', ...options.env } })
}

import { readFileSync } from 'node:fs'
import type { KeyPair } from '../../src/identity/index.js'
import type { LogLine } from './log-capture.js'
import { launchCli } from './launched.js'

export interface LaunchedCircle {
  readonly url: string
  readonly publicKey: string
}

/** The built `circles launch` running as a process of its own (run `npm run build` first). */
export interface LaunchedNode {
  readonly pid: number
  readonly circles: ReadonlyMap<string, LaunchedCircle>
  readonly admin: string
  readonly hostPids: readonly number[]
  /** Every JSON log line the node wrote on stdout so far. */
  readonly lines: LogLine[]
  /** The first log line (written or to come) that matches. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  /** Memory figures of a process from /proc/<pid>/status, in bytes (VmRSS, VmHWM = peak RSS). */
  memory(pid?: number): { readonly rss: number; readonly peak: number }
  /** Whether the process still runs. */
  alive(): boolean
  /** Resolves with the exit code once the process ended. */
  readonly exited: Promise<number | null>
  /** Everything written on stderr. */
  stderr(): string
}

export interface LaunchOptions {
  /** The contents of circles.json (ports 0 are fine: the URLs are read from the log). */
  readonly circles: readonly Record<string, unknown>[]
  readonly args?: readonly string[]
  readonly env?: Record<string, string>
  /** Key pairs of circles by name (otherwise each launch makes its own). */
  readonly keys?: Readonly<Record<string, KeyPair>>
}

/** Read VmRSS and VmHWM of a process (bytes). */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

/**
 * Launch the built CLI with a circles.json of the test's own, one sandbox host, the admin
 * listener on a free port and logs at info; resolves once it serves. Killed (with its process
 * group) at teardown.
 */
export async function launchNode(t: { teardown(fn: () => unknown): void }, options: LaunchOptions): Promise<LaunchedNode> {
  const cli = await launchCli(t, {
    circles: options.circles,
    ...(options.args === undefined ? {} : { args: options.args }),
    ...(options.keys === undefined ? {} : { keys: options.keys }),
    env: { CIRCLES_LOG_LEVEL: 'info', ...options.env },
    waitForServing: false,
  })
  const serving = await cli.waitFor((line) => /^serving /.test(line.msg), 60_000)
  const circles = new Map<string, LaunchedCircle>()
  for (const line of cli.lines) {
    if (typeof line['circle'] === 'string' && typeof line['url'] === 'string') {
      circles.set(line['circle'], { url: line['url'], publicKey: String(line['public_key']) })
    }
  }
  let running = true
  const exited = cli.exited.then(({ code }) => {
    running = false
    return code
  })
  return {
    pid: cli.child.pid!,
    circles,
    admin: String(serving['admin']),
    hostPids: serving['sandbox_pids'] as number[],
    lines: cli.lines,
    waitFor: (match, timeoutMs) => cli.waitFor(match, timeoutMs),
    memory: (pid = cli.child.pid!) => processMemory(pid),
    alive: () => running,
    exited,
    stderr: cli.stderr,
  }
}

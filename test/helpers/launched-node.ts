import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CLI = join(ROOT, 'dist/src/cli/main.js')

export interface LaunchedCircle {
  readonly url: string
  readonly publicKey: string
}

export type LogLine = Record<string, unknown> & { readonly msg: string }

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
}

/** Read VmRSS and VmHWM of a process (bytes). */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

/**
 * Launch the built CLI with a circles.json of the test's own, one sandbox host, and the admin
 * listener on a free port; resolves once it serves. Killed (with its process group) at teardown.
 */
export async function launchNode(t: { teardown(fn: () => unknown): void }, options: LaunchOptions): Promise<LaunchedNode> {
  const dir = mkdtempSync(join(tmpdir(), 'circles-launched-'))
  const config = join(dir, 'circles.json')
  writeFileSync(config, JSON.stringify(options.circles))
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', CLI, 'launch', '--config', config, '--db-path', join(dir, 'db'), '--sandbox-processes', '1', '--admin-port', '0', ...(options.args ?? [])],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, CIRCLES_LOG_LEVEL: 'info', ...options.env } },
  )
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
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
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = []
  let partial = ''
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n')
    partial = parts.pop()!
    for (const part of parts) {
      if (part.trim() === '') continue
      let line: LogLine
      try {
        line = JSON.parse(part) as LogLine
      } catch {
        continue
      }
      lines.push(line)
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.match(line)) waiters.splice(i, 1)[0]!.resolve(line)
    }
  })
  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> => {
    const found = lines.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs)
      const onExit = () => reject(new Error(`the node exited; stderr: ${stderr.slice(-2000)}`))
      void exited.then(onExit)
      waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        },
      })
    })
  }
  const serving = await waitFor((line) => /^serving /.test(line.msg), 60_000)
  const circles = new Map<string, LaunchedCircle>()
  for (const line of lines) {
    if (typeof line['circle'] === 'string' && typeof line['url'] === 'string') {
      circles.set(line['circle'], { url: line['url'], publicKey: String(line['public_key']) })
    }
  }
  return {
    pid: child.pid!,
    circles,
    admin: String(serving['admin']),
    hostPids: serving['sandbox_pids'] as number[],
    lines,
    waitFor,
    memory: (pid = child.pid!) => processMemory(pid),
    alive: () => running,
    exited,
    stderr: () => stderr,
  }
}

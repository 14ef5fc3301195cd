import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CLI = join(ROOT, 'dist/src/cli/main.js')

/** The built CLI is there (npm test builds it first). */
export function cliBuilt(): boolean {
  return existsSync(CLI)
}

export type LogEvent = Record<string, unknown> & { readonly msg?: string }

export interface CliNode {
  readonly child: ChildProcess
  readonly pid: number
  /** Every JSON log line so far. */
  readonly events: LogEvent[]
  /** The first log line (written or to come) that matches; rejects if the process exits first. */
  waitFor(match: (event: LogEvent) => boolean): Promise<LogEvent>
  /** Exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>
  /** The admin listener's URL, once the node serves. */
  admin: string | undefined
  /** Output for failure messages. */
  output(): string
  /** SIGKILL the node process only, then wait until its whole process group is gone. */
  kill9(): Promise<void>
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>
}

/**
 * Run `circles <args>` (the built CLI) in its own process group, killed at teardown, and wait
 * for the log line matching `ready` (e.g. /^serving / for launch, /^worker serving / for a worker).
 */
export async function startCli(t: { teardown(fn: () => unknown): void }, args: readonly string[], ready: RegExp, env: Record<string, string> = {}): Promise<CliNode> {
  const { NODE_OPTIONS: _drop, ...base } = process.env
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...base, ...env },
  })
  const pid = child.pid!
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  })
  const events: LogEvent[] = []
  const waiters: { match: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = []
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdout!.on('data', (c: Buffer) => {
    const text = partial + c.toString()
    stdout += c.toString()
    const lines = text.split('\n')
    partial = lines.pop()!
    for (const line of lines) {
      if (line.trim() === '') continue
      let event: LogEvent
      try {
        event = JSON.parse(line) as LogEvent
      } catch {
        continue
      }
      events.push(event)
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.match(event)) waiters.splice(i, 1)[0]!.resolve(event)
    }
  })
  const output = () => `${stderr}\n${stdout}`.slice(-4000)
  const waitFor = (match: (event: LogEvent) => boolean) => {
    const found = events.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise<LogEvent>((resolve, reject) => {
      waiters.push({ match, resolve })
      void exited.then((code) => reject(new Error(`circles ${args[0]} exited (${code}) while a log line was awaited:\n${output()}`)))
    })
  }
  const node: CliNode = {
    child,
    pid,
    events,
    waitFor,
    exited,
    admin: undefined,
    output,
    async kill9() {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
      await exited
      await groupGone(pid)
    },
    async stop() {
      child.kill('SIGTERM')
      return exited
    },
  }
  const serving = await waitFor((e) => ready.test(String(e.msg ?? '')))
  node.admin = typeof serving['admin'] === 'string' ? serving['admin'] : undefined
  return node
}

/** Wait until no process of the group is left (a node's sandbox hosts exit when it dies, and release the database lock). */
export async function groupGone(pgid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(-pgid, 0)
    } catch {
      return
    }
    await sleep(10)
  }
}

/** A counter or gauge from a node's /metrics (0 when absent). */
export async function metric(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text()
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return match === null ? 0 : Number(match[1])
}

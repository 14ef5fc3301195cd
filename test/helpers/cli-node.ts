import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, ROOT, spawnCli } from './cli-process.js'

export { CLI }

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
  const cli = spawnCli(t, args, { cwd: ROOT, env: { ...base, ...env } })
  const { child, pid } = cli
  const exited = cli.exited.then(({ code }) => code)
  const output = () => `${cli.stderr()}\n${cli.stdout()}`.slice(-4000)
  const waitFor = (match: (event: LogEvent) => boolean) => cli.waitFor(match)
  const node: CliNode = {
    child,
    pid,
    events: cli.lines,
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

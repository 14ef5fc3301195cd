import { readFileSync } from 'node:fs'

/**
 * A process as a lock file records it: its pid and, where /proc exists, its start time in clock
 * ticks since boot. The start time tells a live holder from an unrelated process that was given
 * the same pid after the holder died.
 */
export interface ProcessIdentity {
  readonly pid: number
  readonly startTicks?: number
}

interface ProcStat {
  readonly state: string
  readonly startTicks: number
}

/** Fields of /proc/<pid>/stat we need; undefined where there is no /proc or no such process. */
function readProcStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // Field 3 is the state; field 22, the start time (fields[0] here is field 3).
    return { state: fields[0]!, startTicks: Number(fields[19]) }
  } catch {
    return undefined
  }
}

/** This process. */
export function ownIdentity(): ProcessIdentity {
  const stat = readProcStat(process.pid)
  return stat === undefined ? { pid: process.pid } : { pid: process.pid, startTicks: stat.startTicks }
}

/** The one-line text a lock file holds: `"<pid> <startTicks>\n"` or `"<pid>\n"`. */
export function formatIdentity(id: ProcessIdentity): string {
  return id.startTicks === undefined ? `${id.pid}\n` : `${id.pid} ${id.startTicks}\n`
}

/** Inverse of {@link formatIdentity}; undefined for empty or foreign content. */
export function parseIdentity(text: string): ProcessIdentity | undefined {
  const match = /^(\d+)(?: (\d+))?\n?$/.exec(text)
  if (match === null) return undefined
  const pid = Number(match[1])
  if (!Number.isSafeInteger(pid) || pid < 1) return undefined
  return match[2] === undefined ? { pid } : { pid, startTicks: Number(match[2]) }
}

/**
 * Whether the process `id` names is still running: it exists (signal 0 reaches it, or is refused
 * for lack of permission), is not a zombie (dead, waiting for its parent to reap it), and started
 * when the record says (else its pid was reused).
 */
export function isProcessAlive(id: ProcessIdentity): boolean {
  try {
    process.kill(id.pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const stat = readProcStat(id.pid)
  if (stat === undefined) return true
  if (stat.state === 'Z' || stat.state === 'X') return false
  return id.startTicks === undefined || id.startTicks === stat.startTicks
}

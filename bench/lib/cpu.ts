import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100

/**
 * CPU time a process has used so far (user + system, all its threads), in milliseconds, from
 * /proc/<pid>/stat; 0 for a process that is gone. Resolution: one clock tick (10 ms), so read it
 * over runs of seconds.
 */
export function processCpuMs(pid: number): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return 0
  }
  // The command name (field 2) may hold spaces: count fields from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
}

/** CPU milliseconds of a set of processes (each counted once). */
export function cpuMsOf(pids: readonly number[]): number {
  let ms = 0
  for (const pid of new Set(pids)) if (pid > 0) ms += processCpuMs(pid)
  return ms
}

import { writeFileSync } from 'node:fs'

/**
 * Give the calling thread a name the kernel shows (Linux: at most 15 bytes; seen in `top -H`,
 * `ps -L -o comm` and `/proc/<pid>/task/<tid>/comm`). Node names none of its threads, so without
 * this a sandbox host's script thread cannot be told from V8's helper threads — the benchmark
 * reads CPU per request by thread from these names. Best effort: elsewhere it does nothing.
 */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15))
  } catch {
    // Not Linux, or /proc not mounted.
  }
}

/** The names Circles gives its own threads. */
export const THREAD_NAMES = { script: 'circles-script', verifier: 'circles-verify' } as const

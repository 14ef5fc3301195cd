/**
 * Signature-verification worker thread. It gives up its claim on the CPU so that a flood of
 * authenticate attempts only uses CPU nothing else wants, and script runs and socket I/O keep
 * their latency: on Linux the thread moves to SCHED_IDLE (with `chrt`), or failing that to nice 19.
 */
import { spawnSync } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { verifyClaim, type SignatureCheck } from '../identity/index.js'
import { nameThisThread, THREAD_NAMES } from '../threads/index.js'
import type { VerifyTask } from './messages.js'

nameThisThread(THREAD_NAMES.verifier)

try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
  if (Number.isInteger(tid) && tid > 0) {
    setPriority(tid, 19)
    spawnSync('chrt', ['--idle', '-p', '0', String(tid)], { stdio: 'ignore', timeout: 2_000 })
  }
} catch {
  // Not Linux, or not permitted: verification simply runs at normal priority.
}

export default function handle(task: VerifyTask): SignatureCheck {
  switch (task.type) {
    case 'verify':
      return verifyClaim(task.message, task.signature, task.claimant)
  }
}

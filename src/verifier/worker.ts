/**
 * Signature-verification worker thread. It lowers its own scheduling priority (Linux: per-thread
 * nice 19) so that a flood of authenticate attempts only uses CPU nothing else wants: script runs
 * and socket I/O keep their latency.
 */
import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { verifyPersonalSignature, type SignatureCheck } from '../identity/index.js'
import type { VerifyTask } from './messages.js'

try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19)
} catch {
  // Not Linux, or not permitted: verification simply runs at normal priority.
}

export default function handle(task: VerifyTask): SignatureCheck {
  switch (task.type) {
    case 'verify':
      return verifyPersonalSignature(task.message, task.signature, task.pubkey)
  }
}

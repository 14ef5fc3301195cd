/**
 * Entry point of a sandbox host process: a piscina pool of one isolated-vm worker thread. The
 * worker thread reads the node's frames from the pipe on fd 3 and writes outcomes to the pipe on
 * fd 4 itself (see `serve` in worker.ts); this thread starts it, and exits when it returns.
 *
 * Why a process of its own: some allocations inside an isolate (a Map or an array growing past
 * the heap limit in one step) make V8 abort the whole process instead of throwing, whatever
 * isolated-vm's memory limit. In a separate process such an abort costs this host only: the node
 * answers the run that was executing WORKER_CRASHED, sends the runs that had not started to the
 * host that replaces this one, and carries on.
 *
 * The process is the unit the node supervises. Should piscina lose its thread (an uncaught
 * error in it), this process exits rather than letting a new thread run frames out of order.
 */
import { faultsFromEnv } from '../faults/index.js'
import { scriptThreadPool } from './script-thread.js'

/** The progress marker file the node named (argv): the worker records there the run it starts. */
const MARKER_PATH = process.argv[2] ?? ''
const INPUT_FD = 3
const OUTCOME_FD = 4
/** Exit code of a host whose worker thread failed (the node logs it with the stderr tail). */
const EXIT_WORKER_FAILED = 70
/** How often the host checks that the node that started it is still there. */
const ORPHAN_CHECK_MS = 1000

if (faultsFromEnv().includes('host-crash-on-start')) {
  process.stderr.write('sandbox host: fault injected: host-crash-on-start\n')
  process.exit(71)
}

if (MARKER_PATH === '') {
  process.stderr.write('sandbox host: started without a progress marker path\n')
  process.exit(64)
}

let closing = false
const pool = scriptThreadPool<number, string>({ sink: { type: 'fd', fd: OUTCOME_FD }, marker: { type: 'file', path: MARKER_PATH } })
pool.on('error', (error: Error) => {
  process.stderr.write(`sandbox host: worker thread failed: ${error.message}\n`)
  process.exit(EXIT_WORKER_FAILED)
})
pool.on('workerDestroy', () => {
  if (closing) return
  process.stderr.write('sandbox host: worker thread died\n')
  process.exit(EXIT_WORKER_FAILED)
})

pool.run(INPUT_FD, { name: 'serve' }).then(
  () => {
    // CLOSE from the node (everything sent has run) or the node's end of the pipe closed.
    closing = true
    void pool.close().then(() => process.exit(0))
  },
  (error: unknown) => {
    process.stderr.write(`sandbox host: the worker thread failed: ${(error as Error).message}\n`)
    process.exit(EXIT_WORKER_FAILED)
  },
)

// The node killed while this host's thread is stuck in something no time limit interrupts: the
// thread never reads the pipe's end, so check the parent instead. This process must not stay
// behind holding the database lock; SIGKILL, because an orderly exit would wait for the thread.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL')
}, ORPHAN_CHECK_MS).unref()

// The node decides when this host stops (it drains first). A Ctrl-C in a terminal, or a service
// manager signalling the whole process group, reaches this process too: ignore it.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {})

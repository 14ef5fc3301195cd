/**
 * Entry point of a sandbox host process: a piscina pool of one isolated-vm worker thread, fed by
 * the node through the pipe on fd 3. The worker thread writes outcomes to the pipe on fd 4
 * itself; this thread only cuts the input into frames and hands them to the pool.
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
import { Socket } from 'node:net'
import { Piscina } from 'piscina'
import { faultsFromEnv } from '../faults/index.js'
import { workerModule } from '../threads/index.js'
import { CLOSE_FRAME, FrameReader } from './wire.js'
import type { WorkerData } from './worker.js'

/** The progress marker file the node named (argv): the worker records there the run it starts. */
const MARKER_PATH = process.argv[2] ?? ''
const INPUT_FD = 3
const OUTCOME_FD = 4
/** Exit code of a host whose worker thread failed (the node logs it with the stderr tail). */
const EXIT_WORKER_FAILED = 70

const worker = workerModule(import.meta.url, 'worker')
if (faultsFromEnv().includes('host-crash-on-start')) {
  process.stderr.write('sandbox host: fault injected: host-crash-on-start\n')
  process.exit(71)
}

if (MARKER_PATH === '') {
  process.stderr.write('sandbox host: started without a progress marker path\n')
  process.exit(64)
}

let closing = false
const pool = new Piscina<string, number>({
  filename: worker.url,
  ...(worker.threadExecArgv === undefined ? {} : { execArgv: worker.threadExecArgv }),
  minThreads: 1,
  maxThreads: 1,
  idleTimeout: Number.POSITIVE_INFINITY,
  concurrentTasksPerWorker: 1,
  recordTiming: false,
  workerData: { sink: { type: 'fd', fd: OUTCOME_FD }, marker: { type: 'file', path: MARKER_PATH } } satisfies WorkerData,
})
pool.on('error', (error: Error) => {
  process.stderr.write(`sandbox host: worker thread failed: ${error.message}\n`)
  process.exit(EXIT_WORKER_FAILED)
})
pool.on('workerDestroy', () => {
  if (closing) return
  process.stderr.write('sandbox host: worker thread died\n')
  process.exit(EXIT_WORKER_FAILED)
})

const closeText = CLOSE_FRAME.slice(0, -1)
const input = new Socket({ fd: INPUT_FD, readable: true, writable: false })
const reader = new FrameReader()
input.on('data', (chunk: Buffer) => {
  reader.push(chunk, (frame) => {
    if (frame === closeText) {
      closing = true
      void pool.close().then(() => process.exit(0))
      return
    }
    if (closing) return
    pool.run(frame).catch((error: unknown) => {
      process.stderr.write(`sandbox host: a frame failed: ${(error as Error).message}\n`)
      process.exit(EXIT_WORKER_FAILED)
    })
  })
})
// The node going away (crash, SIGKILL) closes the pipe: this process must not stay behind.
input.on('end', () => process.exit(0))
input.on('error', () => process.exit(0))

// The node decides when this host stops (it drains first). A Ctrl-C in a terminal, or a service
// manager signalling the whole process group, reaches this process too: ignore it.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {})

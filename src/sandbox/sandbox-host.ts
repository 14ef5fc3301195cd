/**
 * Entry point of a sandbox host process: a piscina pool of one isolated-vm worker thread, driven
 * by its parent over the IPC channel.
 *
 * Why a process of its own: some allocations inside an isolate (a Map or an array growing past
 * the heap limit in one step) make V8 abort the whole process instead of throwing, whatever
 * isolated-vm's memory limit. In a separate process such an abort costs the runs this host had
 * in flight — answered WORKER_CRASHED by the parent, which starts a new host — and never the node.
 */
import { Piscina } from 'piscina'
import { workerUrl } from '../threads/index.js'
import type { HostReply, HostRequest } from './host-messages.js'
import type { WorkerReply, WorkerTask } from './messages.js'

// One thread: the contexts pinned to this host run in the order their batches arrive.
const pool = new Piscina<WorkerTask, WorkerReply>({
  filename: workerUrl(import.meta.url, 'worker'),
  minThreads: 1,
  maxThreads: 1,
  idleTimeout: Number.POSITIVE_INFINITY,
  concurrentTasksPerWorker: 1,
  recordTiming: false,
})
pool.on('error', () => {
  // A worker thread that dies is replaced by piscina; its task is rejected and reported below.
})

function send(reply: HostReply): void {
  process.send?.(reply)
}

process.on('message', (message: HostRequest) => {
  switch (message.type) {
    case 'run':
      pool.run({ type: 'run', batches: message.batches }).then(
        (reply) => send({ type: 'result', id: message.id, results: reply.results }),
        (error: unknown) => send({ type: 'failed', id: message.id, message: (error as Error).message }),
      )
      break
    case 'close':
      void pool.close().then(() => process.exit(0))
      break
  }
})

// The parent going away (crash, SIGKILL) must not leave this process behind.
process.on('disconnect', () => process.exit(0))

// Warm the threads (module load, first isolate) before declaring readiness.
await pool.run({ type: 'run', batches: [] })
send({ type: 'ready' })

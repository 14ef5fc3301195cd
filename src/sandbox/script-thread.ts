import { Piscina } from 'piscina'
import { workerModule } from '../threads/index.js'
import type { WorkerData } from './worker.js'

/**
 * The piscina pool of one isolated-vm thread at the heart of every sandbox host (process or
 * thread isolation): one thread, kept for the host's whole life, one task at a time — the
 * thread is the only writer of its contexts' namespaces, and order within a host matters.
 */
export function scriptThreadPool<Task, Result>(data: WorkerData): Piscina<Task, Result> {
  const worker = workerModule(import.meta.url, 'thread-entry', 'commonjs')
  return new Piscina<Task, Result>({
    filename: worker.url,
    ...(worker.threadExecArgv === undefined ? {} : { execArgv: worker.threadExecArgv }),
    env: worker.threadEnv,
    minThreads: 1,
    maxThreads: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    concurrentTasksPerWorker: 1,
    recordTiming: false,
    workerData: data,
  })
}

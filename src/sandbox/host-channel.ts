import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import type { Worker } from 'node:worker_threads'
import { workerUrl } from '../threads/index.js'
import type { HostReply, HostRequest } from './host-messages.js'
import type { WorkerReply, WorkerTask } from './messages.js'

/**
 * Where a sandbox host runs. `process`: a child process holding a piscina pool of one thread, so
 * that a V8 abort inside an isolate costs that process only. `thread`: a piscina pool of one
 * thread in this process — fewer hops, but such an abort takes the whole node down.
 */
export type SandboxIsolation = 'process' | 'thread'

export interface HostEvents {
  readonly onReply: (reply: HostReply) => void
  /** The host died (`reason` is what it printed last, to tell an out-of-memory abort). */
  readonly onExit: (reason: string) => void
}

/** One sandbox host as the pool sees it. */
export interface HostChannel {
  readonly pid: number
  /** The host's worker threads when they live in this process (`thread` isolation); none otherwise. */
  readonly threads: () => readonly Worker[]
  send(request: HostRequest): void
  /** Stop after the work in hand; resolves once stopped. */
  close(graceMs: number): Promise<void>
}

const STDERR_TAIL_CHARS = 4096

export function openHost(isolation: SandboxIsolation, events: HostEvents): HostChannel {
  return isolation === 'process' ? processHost(events) : threadHost(events)
}

function processHost(events: HostEvents): HostChannel {
  const child = fork(fileURLToPath(workerUrl(import.meta.url, 'sandbox-host')), [], {
    execArgv: process.execArgv.includes('--no-node-snapshot') ? process.execArgv : [...process.execArgv, '--no-node-snapshot'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS)
  })
  child.on('message', (reply: HostReply) => events.onReply(reply))
  child.on('exit', () => events.onExit(stderr))
  child.on('error', () => {
    // 'exit' follows (or the spawn failed and 'exit' reports it); nothing to do twice.
  })
  return {
    pid: child.pid ?? -1,
    threads: () => [],
    send(request) {
      try {
        child.send(request)
      } catch {
        // The channel closed under us: 'exit' answers what was in flight.
      }
    },
    close(graceMs) {
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        try {
          child.send({ type: 'close' } satisfies HostRequest)
        } catch {
          child.kill('SIGKILL')
        }
      })
    },
  }
}

function threadHost(events: HostEvents): HostChannel {
  const pool = new Piscina<WorkerTask, WorkerReply>({
    filename: workerUrl(import.meta.url, 'worker'),
    minThreads: 1,
    maxThreads: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    concurrentTasksPerWorker: 1,
    recordTiming: false,
  })
  pool.on('error', () => {
    // piscina replaces a worker that dies; its task is rejected and answered below.
  })
  void pool.run({ type: 'run', batches: [] }).then(
    () => events.onReply({ type: 'ready' }),
    () => events.onExit('the sandbox thread failed to start'),
  )
  return {
    pid: process.pid,
    threads: () => pool.threads,
    send(request) {
      if (request.type !== 'run') return
      pool.run({ type: 'run', batches: request.batches }).then(
        (reply) => events.onReply({ type: 'result', id: request.id, results: reply.results }),
        (error: unknown) => events.onReply({ type: 'failed', id: request.id, message: (error as Error).message }),
      )
    },
    close: () => pool.close(),
  }
}

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Readable, Writable } from 'node:stream'
import type { Worker } from 'node:worker_threads'
import { FAULTS_ENV } from '../faults/index.js'
import { workerModule } from '../threads/index.js'
import { createMarker } from './progress-marker.js'
import { CLOSE_FRAME, ReplyReader, type FrameWriter, type HostReply } from './wire.js'
import { scriptThreadPool } from './script-thread.js'

/**
 * Where a sandbox host runs. `process`: a child process holding a piscina pool of one thread, so
 * that a V8 abort inside an isolate costs that process only. `thread`: a piscina pool of one
 * thread in this process — fewer hops, but such an abort takes the whole node down.
 */
export type SandboxIsolation = 'process' | 'thread'

/** How a host ended: its exit code or signal, the last of what it wrote on stderr, and its progress. */
export interface HostExit {
  readonly code: number | null
  readonly signal: string | null
  readonly stderrTail: string
  /**
   * The sequence number of the last run the host started (its progress marker), -1 when it
   * started none, undefined when the marker could not be read.
   */
  readonly started: number | undefined
}

export interface HostLinkEvents {
  readonly onReply: (reply: HostReply) => void
  /** Called once, whether the host was asked to stop or died. */
  readonly onExit: (exit: HostExit) => void
  /** A line the host wrote on stderr (for the node's log). */
  readonly onStderr?: (line: string) => void
}

/** One incarnation of a sandbox host as the node sees it. */
export interface HostLink {
  readonly pid: number
  /** The host's worker threads when they live in this process (`thread` isolation). */
  readonly threads: () => readonly Worker[]
  /** A frame from the node's {@link FrameWriter} (its length prefix included). */
  send(frame: Buffer): void
  /** The host's progress marker now: the sequence number of the run it last started. */
  progress(): number | undefined
  /** Finish what was sent, then stop; resolves once stopped (killed after `graceMs`). */
  close(graceMs: number): Promise<void>
  kill(): void
}

const STDERR_TAIL_CHARS = 4096
let channels = 0

export interface HostOptions {
  /** Faults (tests only), passed to a host process in its environment. */
  readonly faults?: readonly string[]
  /** A descriptor the host process inherits and holds while it lives (the database lock). */
  readonly inheritFd?: number
}

/**
 * The only variables of the node's environment a sandbox host inherits. A host runs tenants'
 * scripts: should one escape its isolate, it must find no credential of the node there (the
 * cluster secret, a Redis password, a cloud token) — so what it gets is named here, not filtered.
 */
const HOST_ENV = ['PATH', 'TMPDIR', 'TZ', 'LANG', 'LC_ALL', 'NODE_ENV', 'NODE_OPTIONS', 'NODE_V8_COVERAGE'] as const

function hostEnv(faults: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { [FAULTS_ENV]: faults.join(',') }
  for (const name of HOST_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]
  return env
}

export function openHost(isolation: SandboxIsolation, events: HostLinkEvents, options: HostOptions = {}): HostLink {
  return isolation === 'process' ? processHost(events, options) : threadHost(events)
}

function processHost(events: HostLinkEvents, options: HostOptions): HostLink {
  const entry = workerModule(import.meta.url, 'host-process')
  const faults = options.faults ?? []
  const marker = createMarker()
  const child = spawn(process.execPath, [...entry.execArgv, fileURLToPath(entry.url), marker.path], {
    stdio: ['ignore', 'inherit', 'pipe', 'pipe', 'pipe', ...(options.inheritFd === undefined ? [] : [options.inheritFd])],
    env: hostEnv(faults),
  })
  const input = child.stdio[3] as Writable
  const output = child.stdio[4] as Readable
  let stderrTail = ''
  let partial = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS)
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()!.slice(-STDERR_TAIL_CHARS)
    for (const line of lines) if (line !== '') events.onStderr?.(line)
  })
  const reader = new ReplyReader()
  let broken = false
  output.on('data', (chunk: Buffer) => {
    if (broken) return
    try {
      reader.push(chunk, events.onReply)
    } catch (error) {
      broken = true
      stderrTail += `\n${(error as Error).message}`
      child.kill('SIGKILL')
    }
  })
  // Errors on the pipes (EPIPE when the host died) are followed by 'exit', which reports it.
  input.on('error', () => {})
  output.on('error', () => {})
  let exited = false
  // 'close' (not 'exit'): every outcome the host wrote before dying has been read by then.
  child.on('close', (code, signal) => {
    exited = true
    const started = marker.read()
    marker.remove()
    events.onExit({ code, signal, stderrTail, started })
  })
  child.on('error', () => {
    // A failed spawn is followed by 'close' as well.
  })
  return {
    pid: child.pid ?? -1,
    threads: () => [],
    send(frame) {
      if (!exited) input.write(frame)
    },
    progress: () => marker.read(),
    close(graceMs) {
      return new Promise<void>((resolve) => {
        if (exited) return resolve()
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        child.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
        input.write(CLOSE_FRAME)
      })
    },
    kill() {
      child.kill('SIGKILL')
    },
  }
}

function threadHost(events: HostLinkEvents): HostLink {
  const name = `circles-sandbox-${process.pid}-${++channels}`
  const channel = new BroadcastChannel(name)
  const reader = new ReplyReader()
  channel.onmessage = (event) => {
    const data = (event as unknown as { data: Uint8Array }).data
    reader.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), events.onReply)
  }
  const progress = new SharedArrayBuffer(4)
  const pool = scriptThreadPool<Uint8Array, number>({ sink: { type: 'channel', name }, marker: { type: 'shared', buffer: progress } })
  const started = () => Atomics.load(new Int32Array(progress), 0)
  let exited = false
  const exit = (why: string) => {
    if (exited) return
    exited = true
    // Let outcomes the thread posted before it died arrive first.
    setImmediate(() => {
      channel.close()
      void pool.destroy()
      events.onExit({ code: null, signal: null, stderrTail: why, started: started() })
    })
  }
  pool.on('error', (error: Error) => exit(`sandbox thread failed: ${error.message}`))
  pool.on('workerDestroy', () => exit('sandbox thread died'))
  return {
    pid: process.pid,
    threads: () => pool.threads,
    progress: started,
    send(frame) {
      if (exited) return
      // The records alone, in a buffer of their own: it moves to the thread instead of being copied.
      const records = new Uint8Array(frame.subarray(4))
      pool.run(records, { transferList: [records.buffer] }).catch((error: unknown) => exit(`sandbox thread stopped: ${(error as Error).message}`))
    },
    async close() {
      if (exited) return
      exited = true
      await pool.close()
      // Outcomes posted by the thread's last runs arrive before the exit is reported.
      await new Promise((resolve) => setImmediate(resolve))
      channel.close()
      events.onExit({ code: 0, signal: null, stderrTail: '', started: started() })
    },
    kill() {
      exit('killed')
    },
  }
}

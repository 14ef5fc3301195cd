/**
 * CPU time per thread, read from /proc (Linux): what each thread of the measured processes spent
 * during a load window, divided by the requests answered in it. These figures move far less than
 * req/s on a shared machine, so the bench reports them for every row.
 *
 * Threads are told apart by the names Circles gives them (src/threads/thread-name.ts) and by
 * `tid === pid` for a process's main thread. Everything else in a process — V8's platform
 * threads (concurrent and parallel GC, compilation), libuv's pool — is counted as `helpers`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { THREAD_NAMES } from '../../src/threads/index.js'

/** The processes whose threads are measured: the node (or any server) and its sandbox hosts. */
export interface MeasuredProcesses {
  readonly server: number
  readonly hosts?: readonly number[]
}

/** Nanoseconds on CPU per thread, keyed `pid/tid`, with the thread's name. */
export type ThreadSample = Map<string, { readonly pid: number; readonly tid: number; readonly name: string; readonly ns: number }>

/** CPU µs per request by kind of thread; `total` sums them all. */
export interface CpuPerRequest {
  /** The server's main thread (the node's event loop: sockets, JSON-RPC, actors). */
  readonly server_main: number
  /** V8 and libuv helper threads of the server process (GC, compilation, fs). */
  readonly server_helpers: number
  /** Signature verification threads. */
  readonly verifier: number
  /** Script threads (in sandbox host processes, or in the node with thread isolation). */
  readonly script: number
  /** Sandbox host processes' main threads. */
  readonly host_main: number
  /** Sandbox host processes' helper threads (GC of the script thread's isolates, …). */
  readonly host_helpers: number
  readonly total: number
}

function threadsOf(pid: number, into: ThreadSample): void {
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return
  }
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      into.set(`${pid}/${tid}`, { pid, tid: Number(tid), name, ns })
    } catch {
      // The thread ended between the listing and the read.
    }
  }
}

export function sampleThreads(processes: MeasuredProcesses): ThreadSample {
  const sample: ThreadSample = new Map()
  threadsOf(processes.server, sample)
  for (const host of processes.hosts ?? []) if (host !== processes.server) threadsOf(host, sample)
  return sample
}

/** What each kind of thread spent between two samples, per request, in µs. */
export function cpuPerRequest(before: ThreadSample, after: ThreadSample, processes: MeasuredProcesses, requests: number): CpuPerRequest {
  const sums = { server_main: 0, server_helpers: 0, verifier: 0, script: 0, host_main: 0, host_helpers: 0 }
  for (const [key, now] of after) {
    const spent = now.ns - (before.get(key)?.ns ?? 0)
    if (now.name === THREAD_NAMES.script) sums.script += spent
    else if (now.name === THREAD_NAMES.verifier) sums.verifier += spent
    else if (now.pid === processes.server) sums[now.tid === now.pid ? 'server_main' : 'server_helpers'] += spent
    else sums[now.tid === now.pid ? 'host_main' : 'host_helpers'] += spent
  }
  const per = (ns: number) => (requests > 0 ? Math.round(ns / requests / 10) / 100 : Number.NaN)
  const figures = Object.fromEntries(Object.entries(sums).map(([k, ns]) => [k, per(ns)])) as Omit<CpuPerRequest, 'total'>
  const total = per(Object.values(sums).reduce((a, b) => a + b, 0))
  return { ...figures, total }
}

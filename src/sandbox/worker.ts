/**
 * A sandbox worker thread (piscina): it runs the frames its host hands it, in order, one script
 * at a time, and writes each run's outcome to the node itself — straight to the host's outcome
 * pipe in a process host, before the next run starts. So a run whose effects reached the disk is
 * answered even if the next run brings the whole host process down.
 *
 * It keeps one warm {@link Engine} per memory limit and one open namespace per context: every
 * run of a context goes to the same host and this one thread, so the thread is the namespace's
 * only writer and its size figures stay exact (a new thread measures them again).
 */
import { writeSync } from 'node:fs'
import { workerData } from 'node:worker_threads'
import { DEFAULTS } from '../config/index.js'
import { FAULT_MARKER, faultsFromEnv } from '../faults/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
import { NamespaceStore } from '../storage/index.js'
import { Engine, type RunContext, type RunStore } from './engine.js'
import type { SandboxContext } from './run.js'
import { encodeOutcome, encodeReady, FLAG_REBUILT, MESSAGE, type HostMessage } from './wire.js'

/** Where outcomes go: the host's outcome pipe (process hosts) or a channel to the node (thread hosts). */
export type OutcomeSink = { readonly type: 'fd'; readonly fd: number } | { readonly type: 'channel'; readonly name: string }

export interface WorkerData {
  readonly sink: OutcomeSink
}

const MAX_OPEN_CONTEXTS = 4096
const sinkSpec = (workerData as WorkerData).sink
const channel = sinkSpec.type === 'channel' ? new BroadcastChannel(sinkSpec.name) : undefined
const waitCell = new Int32Array(new SharedArrayBuffer(4))
const hangFault = faultsFromEnv().includes('host-hang')

function emit(buf: Buffer): void {
  if (channel !== undefined) {
    channel.postMessage(buf)
    return
  }
  const fd = (sinkSpec as { fd: number }).fd
  let at = 0
  while (at < buf.length) {
    try {
      at += writeSync(fd, buf, at)
    } catch (error) {
      // The node reads slower than we write: wait a little for room in the pipe.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
      Atomics.wait(waitCell, 0, 0, 1)
    }
  }
}

interface OpenContext {
  facts: SandboxContext
  run: RunContext | undefined
}

const contexts = new Map<number, OpenContext>()
const engines = new Map<string, Engine>()
let seq = 0

function engineFor(facts: SandboxContext): Engine {
  const { memoryMb, maxLogBytes, maxLogLines, maxOutputBytes } = facts.limits
  const key = `${memoryMb}:${maxLogBytes}:${maxLogLines}:${maxOutputBytes}`
  let engine = engines.get(key)
  if (engine === undefined) {
    engine = new Engine({ memoryMb, maxLogBytes, maxLogLines, maxOutputBytes })
    engines.set(key, engine)
  }
  return engine
}

/** A store adapter that keeps the namespace's size for quota checks (this thread is its only writer). */
function openStore(facts: SandboxContext): RunStore {
  const store = new NamespaceStore(facts.root)
  store.open()
  let usedBytes = store.usage()
  return {
    read: (name) => store.read(name, facts.quota) ?? null,
    write: (name, text) => {
      usedBytes = store.write(name, text, usedBytes, facts.quota)
    },
    remove: (name) => {
      const freed = store.remove(name, facts.quota)
      usedBytes -= freed
      return freed > 0
    },
    list: (prefix) => store.list(prefix),
  }
}

function runContext(open: OpenContext): RunContext {
  if (open.run === undefined) {
    open.run = { circle: open.facts.circle, dbPathLabel: open.facts.dbPathLabel, store: openStore(open.facts), cpuMs: open.facts.limits.cpuMs }
  }
  return open.run
}

function runOne(ctxId: number, script: string, caller: string, canWrite: boolean, timeoutMs: number): { outcome: RunOutcome; flags: number } {
  const open = contexts.get(ctxId)
  if (open === undefined) return { outcome: failedRun('INTERNAL_ERROR', 'The sandbox does not know this context'), flags: 0 }
  let ctx: RunContext
  try {
    ctx = runContext(open)
  } catch (error) {
    return { outcome: failedRun('STORAGE_ERROR', `Cannot open the namespace: ${(error as Error).message}`), flags: 0 }
  }
  const engine = engineFor(open.facts)
  const rebuilds = engine.rebuilds
  const outcome = engine.run({ script, caller, canWrite, timeoutMs }, ctx)
  return { outcome, flags: engine.rebuilds === rebuilds ? 0 : FLAG_REBUILT }
}

function remember(ctxId: number, facts: SandboxContext): void {
  const open = contexts.get(ctxId)
  if (open !== undefined && open.facts.root === facts.root) {
    // New limits or quota for a namespace already open: keep its measured size.
    open.facts = facts
    if (open.run !== undefined) open.run = { ...open.run, cpuMs: facts.limits.cpuMs }
    return
  }
  if (contexts.size >= MAX_OPEN_CONTEXTS) contexts.delete(contexts.keys().next().value as number)
  contexts.set(ctxId, { facts, run: undefined })
}

/** Run one frame of messages from the node. */
export default function handle(frame: string): number {
  const messages = JSON.parse(frame) as HostMessage[]
  let runs = 0
  for (const message of messages) {
    switch (message[0]) {
      case MESSAGE.CONTEXT:
        remember(message[1], message[2])
        break
      case MESSAGE.RUN: {
        // Tests only: a hang no time limit can interrupt (the pool's watchdog must see it).
        if (hangFault && message[2].includes(FAULT_MARKER)) Atomics.wait(waitCell, 0, 0)
        const { outcome, flags } = runOne(message[1], message[2], message[3], message[4] === 1, message[5])
        emit(encodeOutcome(seq++, outcome, flags))
        runs++
        break
      }
      case MESSAGE.CLOSE:
        break
    }
  }
  return runs
}

// Warm up before announcing readiness: the first isolate is built with the default limits.
engineFor({
  circle: '',
  root: '',
  dbPathLabel: '',
  quota: { maxDocumentBytes: 1, maxNamespaceBytes: 1, maxNameBytes: 1 },
  limits: {
    timeoutMs: DEFAULTS.SCRIPT_TIMEOUT_MS,
    cpuMs: DEFAULTS.SCRIPT_CPU_MS,
    memoryMb: DEFAULTS.SCRIPT_MEMORY_MB,
    maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
    maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
    maxLogLines: DEFAULTS.MAX_LOG_LINES,
  },
})
emit(encodeReady())

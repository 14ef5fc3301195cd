/**
 * A sandbox worker thread (piscina): it runs the frames its host hands it, in order, one script
 * at a time, and writes the outcomes to the node itself — straight to the host's outcome pipe in
 * a process host.
 *
 * Two rules make a host's death unambiguous for the node, at the cost of one 4-byte write per run
 * instead of a pipe write per run:
 * - Before each run, the worker records the run's sequence number in its progress marker (a
 *   small file the node reads after the host died, or shared memory for a thread host): the
 *   node then knows which run was executing — the culprit — and which never started.
 * - The outcome of a run that changed its namespace is written to the node before the next run
 *   starts (a run whose effects reached the disk is never reported lost); the outcomes of other
 *   runs are written together at the end of the frame.
 *
 * It keeps one warm {@link Engine} per memory limit and one open namespace per context: every
 * run of a context goes to the same host and this one thread, so the thread is the namespace's
 * only writer and its size figures stay exact (a new thread measures them again).
 */
import { openSync, readSync, writeSync } from 'node:fs'
import { workerData } from 'node:worker_threads'
import { FAULT_MARKER, faultsFromEnv } from '../faults/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
import { NamespaceStore } from '../storage/index.js'
import { nameThisThread, THREAD_NAMES } from '../threads/index.js'
import { Engine, type RunContext, type RunStore } from './engine.js'
import { DEFAULT_LIMITS, type SandboxContext } from './run.js'
import { CLOSE_FRAME, encodeOutcome, encodeReady, FLAG_REBUILT, FrameReader, MESSAGE, type HostMessage } from './wire.js'

/** Where outcomes go: the host's outcome pipe (process hosts) or a channel to the node (thread hosts). */
export type OutcomeSink = { readonly type: 'fd'; readonly fd: number } | { readonly type: 'channel'; readonly name: string }

/** Where the worker records the run it starts: a file (process hosts) or shared memory (thread hosts). */
export type ProgressMarker = { readonly type: 'file'; readonly path: string } | { readonly type: 'shared'; readonly buffer: SharedArrayBuffer }

export interface WorkerData {
  readonly sink: OutcomeSink
  readonly marker: ProgressMarker
}

/**
 * Namespaces kept open (store and its name index) at once; the least recently run is closed past
 * it (its facts stay: the node sends a context's facts to a host once, so the host must keep
 * them while it lives — interned, a context costs a few hundred bytes here).
 */
const MAX_OPEN_CONTEXTS = 4096
const sinkSpec = (workerData as WorkerData).sink
const markerSpec = (workerData as WorkerData).marker
const channel = sinkSpec.type === 'channel' ? new BroadcastChannel(sinkSpec.name) : undefined
const waitCell = new Int32Array(new SharedArrayBuffer(4))
const markerCell = markerSpec.type === 'shared' ? new Int32Array(markerSpec.buffer) : undefined
const markerFd = markerSpec.type === 'file' ? openSync(markerSpec.path, 'w') : undefined
const markerBytes = Buffer.alloc(4)

/** Record that run `seq` starts (read by the node only if this host dies). */
function mark(seq: number): void {
  if (markerCell !== undefined) {
    Atomics.store(markerCell, 0, seq)
    return
  }
  markerBytes.writeInt32LE(seq, 0)
  writeSync(markerFd!, markerBytes, 0, 4, 0)
}

/** Outcomes not written yet (runs that changed nothing), written at the end of the frame. */
let pending: Buffer[] = []

function flush(): void {
  if (pending.length === 0) return
  const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
  pending = []
  emit(buf)
}
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
/** Contexts with an open namespace, least recently run first. */
const openOrder = new Map<number, OpenContext>()
/** Limits and quotas are the same for most contexts: one object each. */
const interned = new Map<string, SandboxContext['limits'] | SandboxContext['quota']>()
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

/**
 * The namespace of a context as its runs see it, opened (folders made, temporary files swept,
 * size measured) on its first use: a context whose scripts never touch storage never touches the
 * disk. This thread is the namespace's only writer, so the store's size figures stay exact.
 */
function openStore(open: OpenContext): RunStore {
  let store: NamespaceStore | undefined
  const get = (): NamespaceStore => {
    if (store === undefined) {
      const opened = new NamespaceStore(open.facts.root)
      opened.open()
      store = opened
    }
    return store
  }
  return {
    read: (name) => get().read(name, open.facts.quota) ?? null,
    write: (name, text) => get().write(name, text, open.facts.quota),
    remove: (name) => get().remove(name, open.facts.quota),
    list: (prefix, options) => get().list(prefix, options),
  }
}

/** What a run of the context may spend (its limits may change while its namespace stays open). */
function budget(limits: SandboxContext['limits']): Pick<RunContext, 'cpuMs' | 'effects'> {
  const { cpuMs, maxEmits, maxEmitBytes, maxNotifyValueBytes } = limits
  return { cpuMs, effects: { maxEmits, maxEmitBytes, maxNotifyValueBytes } }
}

function runContext(open: OpenContext): RunContext {
  if (open.run === undefined) {
    open.run = { circle: open.facts.circle, dbPathLabel: open.facts.dbPathLabel, store: openStore(open), ...budget(open.facts.limits) }
  }
  return open.run
}

function intern<T extends SandboxContext['limits'] | SandboxContext['quota']>(value: T): T {
  const key = JSON.stringify(value)
  const known = interned.get(key)
  if (known !== undefined) return known as T
  interned.set(key, value)
  return value
}

function touch(ctxId: number, open: OpenContext): void {
  openOrder.delete(ctxId)
  openOrder.set(ctxId, open)
  if (openOrder.size > MAX_OPEN_CONTEXTS) {
    const [oldestId, oldest] = openOrder.entries().next().value as [number, OpenContext]
    openOrder.delete(oldestId)
    oldest.run = undefined
  }
}

function runOne(ctxId: number, script: string, caller: string, canWrite: boolean, timeoutMs: number): { outcome: RunOutcome; flags: number; changed: boolean } {
  const open = contexts.get(ctxId)
  if (open === undefined) return { outcome: failedRun('INTERNAL_ERROR', 'The sandbox does not know this context'), flags: 0, changed: false }
  touch(ctxId, open)
  let ctx: RunContext
  try {
    ctx = runContext(open)
  } catch (error) {
    return { outcome: failedRun('STORAGE_ERROR', `Cannot open the namespace: ${(error as Error).message}`), flags: 0, changed: false }
  }
  const engine = engineFor(open.facts)
  const rebuilds = engine.rebuilds
  const outcome = engine.run({ script, caller, canWrite, timeoutMs }, ctx)
  return { outcome, flags: engine.rebuilds === rebuilds ? 0 : FLAG_REBUILT, changed: engine.changed }
}

function remember(ctxId: number, sent: SandboxContext): void {
  const facts: SandboxContext = { ...sent, limits: intern(sent.limits), quota: intern(sent.quota) }
  const open = contexts.get(ctxId)
  if (open !== undefined && open.facts.root === facts.root) {
    // New limits or quota for a namespace already open: keep its measured size.
    open.facts = facts
    if (open.run !== undefined) open.run = { ...open.run, ...budget(facts.limits) }
    return
  }
  openOrder.delete(ctxId)
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
        mark(seq)
        // Tests only: a hang no time limit can interrupt (the pool's watchdog must see it).
        if (hangFault && message[2].includes(FAULT_MARKER)) {
          writeSync(2, `sandbox host: fault injected: host-hang (run ${seq})\n`)
          Atomics.wait(waitCell, 0, 0)
        }
        const { outcome, flags, changed } = runOne(message[1], message[2], message[3], message[4] === 1, message[5])
        pending.push(encodeOutcome(seq++, outcome, flags))
        if (changed) flush()
        runs++
        break
      }
      case MESSAGE.CLOSE:
        break
    }
  }
  flush()
  return runs
}

const CLOSE_TEXT = CLOSE_FRAME.slice(0, -1)
const READ_CHUNK_BYTES = 256 * 1024

/**
 * Process hosts: this thread reads the node's frames from the input pipe itself and runs them,
 * until the node sends CLOSE ('closed') or its end of the pipe closes ('eof'). The host's main
 * thread only started it: a frame crosses one boundary (node → this thread), not two, and the
 * host's main thread is not woken per frame. The read blocks this thread, which has nothing
 * else to do between frames.
 */
export function serve(fd: number): 'closed' | 'eof' {
  const reader = new FrameReader()
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES)
  let closed = false
  const onFrame = (frame: string): void => {
    if (closed) return
    if (frame === CLOSE_TEXT) closed = true
    else handle(frame)
  }
  while (!closed) {
    let read: number
    try {
      read = readSync(fd, chunk, 0, chunk.length, null)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') {
        // Only if the descriptor was made non-blocking: wait a little for input.
        Atomics.wait(waitCell, 0, 0, 1)
        continue
      }
      if (code === 'EOF') return 'eof'
      throw error
    }
    if (read === 0) return 'eof'
    reader.push(chunk.subarray(0, read), onFrame)
  }
  return 'closed'
}

nameThisThread(THREAD_NAMES.script)
// Warm up before announcing readiness: the first isolate is built with the default limits.
engineFor({
  circle: '',
  root: '',
  dbPathLabel: '',
  quota: { maxDocumentBytes: 1, maxNamespaceBytes: 1, maxDocuments: 1, maxNameBytes: 1 },
  limits: DEFAULT_LIMITS,
})
mark(-1)
emit(encodeReady())

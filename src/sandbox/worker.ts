/**
 * A sandbox worker thread (piscina): it runs the frames its host hands it, in order, one slice
 * at a time — a run's start, or its continuation once a call it awaits has settled — and writes
 * the replies to the node itself — straight to the host's outcome pipe in a process host. A run
 * waiting on calls holds nothing of the thread: its state stays in its isolate context, and the
 * thread runs other slices meanwhile.
 *
 * Two rules make a host's death unambiguous for the node, at the cost of one 4-byte write per
 * slice instead of a pipe write per slice:
 * - Before each slice, the worker records its sequence number in its progress marker (a small
 *   file the node reads after the host died, or shared memory for a thread host): the node then
 *   knows which slice was executing — the culprit — and which never started.
 * - The reply to a slice that changed its namespace, or that suspended its run (its calls go out
 *   at once), is written to the node before the next slice starts (a run whose effects reached
 *   the disk is never reported lost); the outcomes of other runs are written together at the end
 *   of the frame.
 *
 * It keeps one warm {@link Engine} per memory limit and one open namespace per context: every
 * run of a context goes to the same host and this one thread, so the thread is the namespace's
 * only writer and its size figures stay exact (a new thread measures them again).
 */
import { readSync, writeSync } from 'node:fs'
import { workerData } from 'node:worker_threads'
import { FAULT_MARKER, faultsFromEnv } from '../faults/index.js'
import { WriteLedger } from '../live/index.js'
import { failedRun } from '../protocol/index.js'
import { NamespaceStore } from '../storage/index.js'
import { nameThisThread, THREAD_NAMES } from '../threads/index.js'
import { Engine, type RunContext, type RunStore, type Slice } from './engine.js'
import { openMarkerForWriting } from './progress-marker.js'
import { DEFAULT_LIMITS, type RunRequest, type SandboxContext } from './run.js'
import {
  decodeFrame,
  FLAG_DETACHED,
  FLAG_REBUILT,
  FrameReader,
  MESSAGE,
  RecordWriter,
  writeOutcome,
  writeReady,
  writeSkipped,
  writeSuspended,
  type HostMessage,
} from './wire.js'

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
const markerFd = markerSpec.type === 'file' ? openMarkerForWriting(markerSpec.path) : undefined
const markerBytes = Buffer.alloc(4)

/** Record that slice `seq` starts (read by the node only if this host dies). */
function mark(seq: number): void {
  if (markerCell !== undefined) {
    Atomics.store(markerCell, 0, seq)
    return
  }
  markerBytes.writeInt32LE(seq, 0)
  writeSync(markerFd!, markerBytes, 0, 4, 0)
}

/**
 * Outcomes not written yet (runs that changed nothing), written at the end of the frame: encoded
 * one after the other into one buffer, reused from frame to frame.
 */
const pending = new RecordWriter()

function flush(): void {
  if (pending.at === 0) return
  emit(pending.buf.subarray(0, pending.at))
  pending.reset()
}
const hangFault = faultsFromEnv().includes('host-hang')
/** Tests only: a write of a document named with the marker stops before its rename, for good. */
const storeOptions = faultsFromEnv().includes('write-pause')
  ? {
      beforeRename: (name: string) => {
        if (!name.includes(FAULT_MARKER)) return
        writeSync(2, `sandbox host: fault injected: write-pause (${name})\n`)
        Atomics.wait(waitCell, 0, 0)
      },
    }
  : {}

function emit(buf: Buffer): void {
  if (channel !== undefined) {
    // A copy of its own: a view would carry the whole reused buffer across.
    channel.postMessage(new Uint8Array(buf))
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
  /** Its runs suspended on calls: they hold its open namespace, which must stay the only one. */
  waiting: number
}

const contexts = new Map<number, OpenContext>()
/** Contexts with an open namespace, least recently run first. */
const openOrder = new Map<number, OpenContext>()
/** Limits and quotas are the same for most contexts: one object each. */
const interned = new Map<string, SandboxContext['limits'] | SandboxContext['quota']>()
const engines = new Map<string, Engine>()
/** Runs suspended on this thread, waiting on calls: the seq of their RUN → the engine holding them, and their context. */
const suspended = new Map<number, { readonly engine: Engine; readonly open: OpenContext }>()
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
      const opened = new NamespaceStore(open.facts.root, storeOptions)
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
function budget(limits: SandboxContext['limits']): Pick<RunContext, 'cpuMs' | 'maxCallsInFlight' | 'maxScriptBytes' | 'effects'> {
  const { cpuMs, maxCallsInFlight, maxScriptBytes, maxEmits, maxEmitBytes, maxNotifyValueBytes } = limits
  return { cpuMs, maxCallsInFlight, maxScriptBytes, effects: { maxEmits, maxEmitBytes, maxNotifyValueBytes } }
}

function runContext(open: OpenContext): RunContext {
  if (open.run === undefined) {
    open.run = { circle: open.facts.circle, dbPathLabel: open.facts.dbPathLabel, store: openStore(open), ledger: new WriteLedger(), ...budget(open.facts.limits) }
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
  // Close the least recently run namespace — passing over those whose runs wait on calls: a
  // second store opened for one of them would count its size apart from the first.
  for (let tries = openOrder.size; openOrder.size > MAX_OPEN_CONTEXTS && tries > 0; tries--) {
    const [oldestId, oldest] = openOrder.entries().next().value as [number, OpenContext]
    openOrder.delete(oldestId)
    if (oldest.waiting > 0) openOrder.set(oldestId, oldest)
    else oldest.run = undefined
  }
}

/** Start the run of a RUN record (its seq names it from then on). */
function startRun(runSeq: number, ctxId: number, request: RunRequest): void {
  const open = contexts.get(ctxId)
  if (open === undefined) return reply(runSeq, undefined, 0, { type: 'done', outcome: failedRun('INTERNAL_ERROR', 'The sandbox does not know this context') })
  touch(ctxId, open)
  let ctx: RunContext
  try {
    ctx = runContext(open)
  } catch (error) {
    return reply(runSeq, undefined, 0, { type: 'done', outcome: failedRun('STORAGE_ERROR', `Cannot open the namespace: ${(error as Error).message}`) })
  }
  const engine = engineFor(open.facts)
  const rebuilds = engine.rebuilds
  reply(runSeq, { engine, open }, rebuilds, engine.start(runSeq, request, ctx))
}

/** Continue suspended run `runSeq` (a call settled, or its time is up). */
function continueRun(runSeq: number, next: (engine: Engine) => Slice | undefined): void {
  const held = suspended.get(runSeq)
  const rebuilds = held?.engine.rebuilds ?? 0
  reply(runSeq, held, rebuilds, held === undefined ? undefined : next(held.engine))
}

function release(runSeq: number): void {
  const held = suspended.get(runSeq)
  if (held === undefined) return
  suspended.delete(runSeq)
  held.open.waiting--
}

/**
 * The reply to slice `seq` of run `runSeq`, and the outcomes of runs the slice's abort
 * interrupted. Written at once when the slice changed the namespace or suspended its run.
 */
function reply(runSeq: number, held: { readonly engine: Engine; readonly open: OpenContext } | undefined, rebuilds: number, slice: Slice | undefined): void {
  const engine = held?.engine
  const flags = engine !== undefined && engine.rebuilds !== rebuilds ? FLAG_REBUILT : 0
  let urgent = engine?.changed === true
  if (slice === undefined) writeSkipped(pending, seq)
  else if (slice.type === 'done') {
    release(runSeq)
    writeOutcome(pending, seq, slice.outcome, flags)
  } else {
    if (!suspended.has(runSeq)) {
      suspended.set(runSeq, held!)
      held!.open.waiting++
    }
    writeSuspended(pending, seq, slice.remainingMs, slice.calls.map((c) => [c.id, c.peer, c.script, c.timeoutMs] as const))
    urgent = true
  }
  for (const [key, outcome] of engine?.takeInterrupted() ?? []) {
    release(key)
    writeOutcome(pending, key, outcome, FLAG_DETACHED)
    urgent = true
  }
  if (urgent) flush()
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
  contexts.set(ctxId, { facts, run: undefined, waiting: 0 })
}

/** Set by a CLOSE record: the node asks this thread to finish what it was sent and stop. */
let closeSeen = false
let runs = 0

function onMessage(message: HostMessage): void {
  switch (message.type) {
    case MESSAGE.CONTEXT:
      remember(message.ctxId, message.context)
      break
    case MESSAGE.RUN: {
      mark(seq)
      // Tests only: a hang no time limit can interrupt (the pool's watchdog must see it).
      if (hangFault && message.request.script.includes(FAULT_MARKER)) {
        writeSync(2, `sandbox host: fault injected: host-hang (run ${seq})\n`)
        Atomics.wait(waitCell, 0, 0)
      }
      startRun(seq, message.ctxId, message.request)
      seq++
      runs++
      break
    }
    case MESSAGE.RESUME: {
      mark(seq)
      const { runSeq, callId, settled } = message
      continueRun(runSeq, (engine) => engine.resume(runSeq, callId, settled))
      seq++
      runs++
      break
    }
    case MESSAGE.EXPIRE: {
      mark(seq)
      const { runSeq } = message
      continueRun(runSeq, (engine) => engine.expire(runSeq))
      seq++
      runs++
      break
    }
    case MESSAGE.CLOSE:
      closeSeen = true
      break
  }
}

/**
 * Run one frame of records from the node (without its length prefix). A malformed record ends
 * this thread (and its host) with an error, after the outcomes of the slices before it are
 * written: the node answers those, and sends the slices not answered to the host that replaces
 * this one.
 */
export default function handle(frame: Uint8Array): number {
  const records = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
  runs = 0
  try {
    decodeFrame(records, onMessage)
  } finally {
    flush()
  }
  return runs
}

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
  const onFrame = (frame: Buffer): void => {
    if (!closeSeen) handle(frame)
  }
  while (!closeSeen) {
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
writeReady(pending)
flush()

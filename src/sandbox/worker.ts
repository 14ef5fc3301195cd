/**
 * A sandbox worker thread (piscina). It keeps one warm {@link Engine} per memory limit and runs
 * the batches it is handed in order, one script at a time.
 */
import { NamespaceStore } from '../storage/index.js'
import { Engine, type RunContext } from './engine.js'
import type { ContextBatch, ContextBatchResult, WorkerReply, WorkerTask } from './messages.js'

const engines = new Map<string, Engine>()
/** Namespaces this thread has opened (created, temporary files swept). */
const opened = new Map<string, NamespaceStore>()
const MAX_OPENED = 4096

function engineFor(batch: ContextBatch): Engine {
  const { memoryMb, maxLogBytes, maxOutputBytes } = batch.limits
  const key = `${memoryMb}:${maxLogBytes}:${maxOutputBytes}`
  let engine = engines.get(key)
  if (engine === undefined) {
    engine = new Engine({ memoryMb, maxLogBytes, maxOutputBytes })
    engines.set(key, engine)
  }
  return engine
}

function storeFor(root: string): NamespaceStore {
  let store = opened.get(root)
  if (store === undefined) {
    store = new NamespaceStore(root)
    store.open()
    if (opened.size >= MAX_OPENED) opened.delete(opened.keys().next().value as string)
    opened.set(root, store)
  }
  return store
}

function runBatch(batch: ContextBatch): ContextBatchResult {
  const engine = engineFor(batch)
  let store: NamespaceStore
  try {
    store = storeFor(batch.root)
  } catch (error) {
    const message = (error as Error).message
    return {
      usedBytes: batch.usedBytes,
      outcomes: batch.runs.map(() => ({
        type: 'error' as const,
        code: 'STORAGE_ERROR' as const,
        message,
        logs: [],
        logsTruncated: false,
        runMs: 0,
        cpuMs: 0,
      })),
    }
  }
  const ctx: RunContext = { circle: batch.circle, dbPath: batch.dbPath, store, quota: batch.quota, usedBytes: batch.usedBytes }
  const outcomes = batch.runs.map((run) =>
    engine.run(
      { script: run.script, caller: run.caller, canWrite: run.canWrite, timeoutMs: run.timeoutMs, cpuMs: batch.limits.cpuMs },
      ctx,
    ),
  )
  return { outcomes, usedBytes: ctx.usedBytes }
}

export default function handle(task: WorkerTask): WorkerReply {
  switch (task.type) {
    case 'run':
      return { type: 'run', results: task.batches.map(runBatch) }
  }
}

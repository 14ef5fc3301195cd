/**
 * A sandbox worker thread (piscina). It keeps one warm {@link Engine} per memory limit and runs
 * the batches it is handed in order, one script at a time.
 */
import { NamespaceStore } from '../storage/index.js'
import { Engine, type RunContext } from './engine.js'
import { failedOutcome, type ContextBatch, type ContextBatchResult, type WorkerReply, type WorkerTask } from './messages.js'

const engines = new Map<string, Engine>()
/**
 * Namespaces this thread has opened (created, temporary files swept, size measured). Every
 * batch of a context goes to the same host process and its single worker thread, so this
 * thread is the namespace's only writer while it lives and its size figure stays exact; a new
 * thread measures again.
 */
const opened = new Map<string, RunContext>()
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

function contextFor(batch: ContextBatch): RunContext {
  let ctx = opened.get(batch.root)
  if (ctx === undefined) {
    const store = new NamespaceStore(batch.root)
    store.open()
    ctx = { circle: batch.circle, dbPath: batch.dbPath, store, quota: batch.quota }
    if (opened.size >= MAX_OPENED) opened.delete(opened.keys().next().value as string)
    opened.set(batch.root, ctx)
  } else {
    ctx.quota = batch.quota
  }
  return ctx
}

function runBatch(batch: ContextBatch): ContextBatchResult {
  const engine = engineFor(batch)
  let ctx: RunContext
  try {
    ctx = contextFor(batch)
  } catch (error) {
    const outcome = failedOutcome('STORAGE_ERROR', (error as Error).message)
    return { outcomes: batch.runs.map(() => outcome) }
  }
  const outcomes = batch.runs.map((run) =>
    engine.run(
      { script: run.script, caller: run.caller, canWrite: run.canWrite, timeoutMs: run.timeoutMs, cpuMs: batch.limits.cpuMs },
      ctx,
    ),
  )
  return { outcomes }
}

export default function handle(task: WorkerTask): WorkerReply {
  switch (task.type) {
    case 'run':
      return { type: 'run', results: task.batches.map(runBatch) }
  }
}

import { basename, dirname } from 'node:path'

/** One file-system event of an strace log, in the order the calls completed. */
export type TraceEvent =
  | { readonly type: 'open'; readonly path: string; readonly fd: number }
  | { readonly type: 'write'; readonly fd: number; readonly path: string | undefined }
  | { readonly type: 'sync'; readonly fd: number; readonly path: string | undefined }
  | { readonly type: 'rename'; readonly from: string; readonly to: string }
  | { readonly type: 'unlink'; readonly path: string }

const LINE = /^(?:\[pid\s+)?(\d+)\]?\s+(.*)$/
const CALL = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/
const UNFINISHED = /^(\w+)\((.*?)\s*<unfinished \.\.\.>$/
const RESUMED = /^<\.\.\. (\w+) resumed>(.*)$/

/** The quoted strings of a call's arguments, unescaped enough for plain ASCII paths. */
function strings(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
}

/**
 * Parse the log of `strace -f -s 4096 -e trace=openat,write,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat -o FILE`.
 * Calls split by another thread (`<unfinished ...>` … `<... resumed>`) are joined; failed calls
 * (negative results) are dropped. Descriptors are tracked across the whole process, as the
 * kernel does for its threads.
 */
export function parseStrace(log: string): TraceEvent[] {
  const pending = new Map<string, string>()
  const fdPaths = new Map<number, string>()
  const events: TraceEvent[] = []
  for (const raw of log.split('\n')) {
    const line = LINE.exec(raw.trim())
    if (line === null) continue
    const [, pid, body] = line as unknown as [string, string, string]
    let text = body
    const unfinished = UNFINISHED.exec(body)
    if (unfinished !== null) {
      pending.set(pid, `${unfinished[1]}(${unfinished[2]}`)
      continue
    }
    const resumed = RESUMED.exec(body)
    if (resumed !== null) text = `${pending.get(pid) ?? `${resumed[1]}(`}${resumed[2]}`
    const call = CALL.exec(text)
    if (call === null) continue
    const [, name, args, result] = call as unknown as [string, string, string, string]
    const value = Number(result)
    if (value < 0) continue
    const fd = Number.parseInt(args, 10)
    const paths = strings(args)
    switch (name) {
      case 'openat':
        fdPaths.set(value, paths[0]!)
        events.push({ type: 'open', path: paths[0]!, fd: value })
        break
      case 'write':
        events.push({ type: 'write', fd, path: fdPaths.get(fd) })
        break
      case 'fsync':
      case 'fdatasync':
        events.push({ type: 'sync', fd, path: fdPaths.get(fd) })
        break
      case 'rename':
      case 'renameat':
      case 'renameat2':
        events.push({ type: 'rename', from: paths[0]!, to: paths[1]! })
        break
      case 'unlink':
      case 'unlinkat':
        events.push({ type: 'unlink', path: paths[0]! })
        break
    }
  }
  return events
}

export interface DurabilityReport {
  /** Renames of a temporary file over a document of `dataDir` that were checked. */
  readonly renames: number
  /** Unlinks of a document of `dataDir` that were checked. */
  readonly unlinks: number
  readonly violations: string[]
}

/**
 * Check the durable-write protocol in a trace, for the documents of `dataDir`:
 * - every rename of a temporary file over a document comes after data was written to that
 *   file and after an fsync of the file, with no write in between;
 * - every such rename, and every unlink of a document, is followed by an fsync of `dataDir`
 *   before the next rename or unlink in it (so each operation is durable before the next starts).
 */
export function checkDurableWrites(events: readonly TraceEvent[], dataDir: string): DurabilityReport {
  const violations: string[] = []
  let renames = 0
  let unlinks = 0
  const inData = (path: string) => dirname(path) === dataDir
  const isTemp = (path: string) => basename(path).startsWith('.tmp-')
  events.forEach((event, i) => {
    const mutation = event.type === 'rename' ? inData(event.to) && isTemp(event.from) : event.type === 'unlink' && inData(event.path) && !isTemp(event.path)
    if (!mutation) return
    const label = event.type === 'rename' ? `rename ${basename(event.from)} → ${basename(event.to)}` : `unlink ${basename((event as { path: string }).path)}`
    if (event.type === 'rename') {
      renames++
      const before = events.slice(0, i)
      const opened = before.findLastIndex((e) => e.type === 'open' && e.path === event.from)
      const lastWrite = before.findLastIndex((e) => e.type === 'write' && e.path === event.from)
      const lastSync = before.findLastIndex((e) => e.type === 'sync' && e.path === event.from)
      if (opened < 0) violations.push(`${label}: the temporary file was never opened`)
      if (lastWrite < opened) violations.push(`${label}: nothing was written to the temporary file`)
      if (lastSync < 0) violations.push(`${label}: the temporary file was not fsynced before the rename`)
      else if (lastSync < lastWrite) violations.push(`${label}: the temporary file was written after its last fsync`)
    } else {
      unlinks++
    }
    const after = events.slice(i + 1)
    const next = after.findIndex((e) => (e.type === 'rename' && inData(e.to)) || (e.type === 'unlink' && inData(e.path)))
    const window = next < 0 ? after : after.slice(0, next)
    if (!window.some((e) => e.type === 'sync' && e.path === dataDir)) {
      violations.push(`${label}: the data directory was not fsynced after it${next < 0 ? '' : ' (before the next change)'}`)
    }
  })
  return { renames, unlinks, violations }
}

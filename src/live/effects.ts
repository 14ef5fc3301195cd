/**
 * What a run makes visible to the context's watchers: its committed writes and deletes and the
 * events it emitted, in the order they happened. The sandbox thread records them as the run goes
 * — across all its slices, when it awaits calls ({@link EffectRecorder}) — carries them back with
 * the run's outcome (binary, {@link encodeEffects}), and the node's context feed turns them into
 * numbered notices.
 */
import { DEFAULTS } from '../config/index.js'
import { circlesError, isCirclesError } from '../errors/index.js'
import { validateDocumentName } from '../storage/index.js'

export type RunEffect =
  /** A committed `save_data`; `value` is the stored JSON text, absent when over the notification value limit. */
  | { readonly kind: 'save'; readonly name: string; readonly value?: string }
  /** A `delete_data` that removed a document. */
  | { readonly kind: 'delete'; readonly name: string }
  | { readonly kind: 'emit'; readonly topic: string; readonly value: string }

export interface RunEffects {
  readonly list: readonly RunEffect[]
  /**
   * The run's effects went past what one run may report (or a write's fate is unknown): `list`
   * is incomplete, and whoever watches the context must read it again.
   */
  readonly lost: boolean
}

/** Per-run bounds on what a run reports and emits (the context's run limits carry the first three). */
export interface EffectLimits {
  readonly maxEmits: number
  readonly maxEmitBytes: number
  /** Largest value carried along with a change or event (UTF-8 bytes of its JSON). */
  readonly maxNotifyValueBytes: number
}

const MAX_NOTICES = DEFAULTS.NOTICES_PER_RUN
const MAX_NOTICE_BYTES = DEFAULTS.NOTICE_BYTES_PER_RUN

/**
 * The writes of one namespace's runs, numbered in the order they reached its store, on the
 * sandbox thread that is the namespace's only writer. A run reports its writes when it ends, and
 * runs of a context interleave at their `await`s: a run suspended on a call may end after
 * another run that wrote the same document later. Its own earlier write would then be reported
 * after the later one, and a watcher would be left with a value the document no longer has. The
 * ledger drops such a write from the report (the later one, reported already, is what the
 * document holds); it only keeps names while more than one run holds writes not reported yet.
 * A run whose report was lost makes every watcher read the context again: no write made before
 * that is reported after it.
 */
export class WriteLedger {
  private last = 0
  /** Runs that hold writes not reported yet. */
  private holding = 0
  /** Per document: the number of the last write to it reported while other runs held writes. */
  private readonly reported = new Map<string, number>()
  /** Writes numbered up to this one are no longer reported (a report was lost after them). */
  private readBack = 0

  /** The number of a write that just reached the store. */
  stamp(): number {
    return ++this.last
  }

  /** A run holds a write not reported yet (once per run, at its first). */
  hold(): void {
    this.holding++
  }

  /** A run's report was lost: its watchers will read what every write so far left. */
  lost(): void {
    this.readBack = this.last
  }

  /**
   * A run that held writes reports `list` (its writes numbered by `stamps`, in the same order):
   * the writes a later, already reported write to the same document superseded are left out,
   * and so are those made before a lost report.
   */
  settle(list: readonly RunEffect[], stamps: readonly number[]): RunEffect[] {
    this.holding--
    const checking = this.reported.size > 0
    const keeping = this.holding > 0
    const kept: RunEffect[] = []
    for (let i = 0; i < list.length; i++) {
      const effect = list[i]!
      if (effect.kind !== 'emit') {
        const stamp = stamps[i]!
        const later = checking ? this.reported.get(effect.name) : undefined
        if ((later !== undefined && later > stamp) || stamp <= this.readBack) continue
        if (keeping) this.reported.set(effect.name, stamp)
      }
      kept.push(effect)
    }
    if (!keeping) this.reported.clear()
    return kept
  }
}

/**
 * The effects of one run, on the sandbox thread: writes are recorded once committed, in the
 * order its slices made them; `emit` is checked against the run's budget here and throws coded
 * errors the script can catch. Taken once, when the run ends.
 */
export class EffectRecorder {
  private list: RunEffect[] = []
  /** The ledger's number of each write in `list` (0 for an event). */
  private stamps: number[] = []
  private bytes = 0
  private lost = false
  private emits = 0
  private emitBytes = 0
  /** Whether this run holds writes in the ledger (until taken). */
  private holding = false

  constructor(
    private readonly limits: EffectLimits,
    private readonly ledger: WriteLedger,
  ) {}

  saved(name: string, text: string): void {
    const max = this.limits.maxNotifyValueBytes
    // A value is at least as many bytes as it has characters: longer ones need no counting.
    const kept = text.length <= max && Buffer.byteLength(text) <= max
    this.record(kept ? { kind: 'save', name, value: text } : { kind: 'save', name }, name.length + (kept ? text.length : 0), this.write())
  }

  deleted(name: string): void {
    this.record({ kind: 'delete', name }, name.length, this.write())
  }

  /** A write whose outcome is unknown (the disk failed midway): watchers must read again. */
  uncertain(): void {
    this.lost = true
  }

  /** `emit(topic, value)` of the script, `text` being the value's JSON. */
  emit(topic: unknown, text: string): void {
    let name: string
    try {
      name = validateDocumentName(topic, DEFAULTS.MAX_NAME_BYTES)
    } catch (error) {
      if (!isCirclesError(error)) throw error
      throw circlesError('INVALID_NAME', `emit: a topic follows the rules of document names (${error.message})`)
    }
    const { maxEmits, maxEmitBytes, maxNotifyValueBytes } = this.limits
    if (this.emits >= maxEmits) throw circlesError('QUOTA_EXCEEDED', `emit: at most ${maxEmits} events per run`, { limit: maxEmits })
    const size = text.length > maxNotifyValueBytes ? text.length : Buffer.byteLength(text)
    if (size > maxNotifyValueBytes) {
      throw circlesError('QUOTA_EXCEEDED', `emit: the value is ${size} bytes; an event carries at most ${maxNotifyValueBytes}`, { limit: maxNotifyValueBytes })
    }
    const cost = Buffer.byteLength(name) + size
    if (this.emitBytes + cost > maxEmitBytes) {
      throw circlesError('QUOTA_EXCEEDED', `emit: at most ${maxEmitBytes} bytes of topics and values per run`, { limit: maxEmitBytes })
    }
    this.emits++
    this.emitBytes += cost
    this.record({ kind: 'emit', topic: name, value: text }, cost, 0)
  }

  /** A committed write: numbered by the ledger, which learns that this run holds one. */
  private write(): number {
    if (!this.holding) {
      this.holding = true
      this.ledger.hold()
    }
    return this.ledger.stamp()
  }

  private record(effect: RunEffect, bytes: number, stamp: number): void {
    if (this.lost) return
    if (this.list.length >= MAX_NOTICES || this.bytes + bytes > MAX_NOTICE_BYTES) {
      // Past what one run may report: drop the run's list rather than send part of it.
      this.lost = true
      this.list = []
      this.stamps = []
      return
    }
    this.bytes += bytes
    this.list.push(effect)
    this.stamps.push(stamp)
  }

  /** The run's effects, or undefined when it had none: called once, when the run ends. */
  take(): RunEffects | undefined {
    let list = this.list
    if (this.lost) this.ledger.lost()
    if (this.holding) {
      this.holding = false
      list = this.ledger.settle(list, this.stamps)
    }
    this.list = []
    this.stamps = []
    if (list.length === 0 && !this.lost) return undefined
    return { list, lost: this.lost }
  }
}

const KIND = { save: 0, saveWithoutValue: 1, delete: 2, emit: 3 } as const

/**
 * Binary form, appended to a run's outcome on the host's pipe:
 *   u8 lost | u32 count | count × (u8 kind | u32 key bytes | key | u32 value bytes | value)
 * with kind 0 save, 1 save (value left out), 2 delete, 3 emit; key is the name or topic.
 */
export function encodeEffects(effects: RunEffects): Buffer {
  let size = 5
  for (const e of effects.list) size += 9 + Buffer.byteLength(e.kind === 'emit' ? e.topic : e.name) + (e.kind === 'delete' || e.value === undefined ? 0 : Buffer.byteLength(e.value))
  const buf = Buffer.allocUnsafe(size)
  let at = buf.writeUInt8(effects.lost ? 1 : 0, 0)
  at = buf.writeUInt32LE(effects.list.length, at)
  for (const e of effects.list) {
    const kind = e.kind === 'save' ? (e.value === undefined ? KIND.saveWithoutValue : KIND.save) : KIND[e.kind]
    at = buf.writeUInt8(kind, at)
    at = writeText(buf, at, e.kind === 'emit' ? e.topic : e.name)
    at = writeText(buf, at, e.kind === 'delete' ? '' : (e.value ?? ''))
  }
  return buf
}

function writeText(buf: Buffer, at: number, text: string): number {
  const bytes = buf.write(text, at + 4)
  buf.writeUInt32LE(bytes, at)
  return at + 4 + bytes
}

/** Read effects written by {@link encodeEffects}; a malformed section (a broken host) throws. */
export function decodeEffects(buf: Buffer, start: number, end: number): RunEffects {
  let at = start
  const text = (): string => {
    const length = buf.readUInt32LE(at)
    const from = at + 4
    at = from + length
    if (at > end) throw new Error('sandbox host sent truncated run effects')
    return buf.toString('utf8', from, at)
  }
  const lost = buf.readUInt8(at) === 1
  const count = buf.readUInt32LE(at + 1)
  at += 5
  const list: RunEffect[] = []
  for (let i = 0; i < count; i++) {
    const kind = buf.readUInt8(at++)
    const key = text()
    const value = text()
    if (kind === KIND.save) list.push({ kind: 'save', name: key, value })
    else if (kind === KIND.saveWithoutValue) list.push({ kind: 'save', name: key })
    else if (kind === KIND.delete) list.push({ kind: 'delete', name: key })
    else if (kind === KIND.emit) list.push({ kind: 'emit', topic: key, value })
    else throw new Error(`sandbox host sent an unknown run effect ${kind}`)
  }
  if (at !== end) throw new Error('sandbox host sent malformed run effects')
  return { lost, list }
}

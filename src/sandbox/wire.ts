/**
 * The hand-off format between the node and a sandbox host — designed for what the node's main
 * thread pays per run, since that thread serves every socket too. Binary both ways, one codec per
 * direction: the node encodes what the script thread decodes (`FrameWriter` → `decodeFrame`), the
 * script thread encodes what the node decodes (`RecordWriter` → `ReplyReader`). Each side treats
 * what it reads as hostile: every length and field is checked against what was received, and a
 * malformed stream is refused with an error (the node then kills the host; a host ends itself).
 *
 * Node → host: frames, each `u32 bytes of the rest | records…` (at most MAX_FRAME_BYTES), each
 * record `u32 bytes of the rest | u8 type | …`:
 *   CONTEXT: u32 ctxId | SandboxContext as JSON text (UTF-8)
 *                     the facts of a context, sent once per host (and again when they change)
 *   RUN:     u32 ctxId | u8 flags | f64 timeoutMs | u16 caller bytes | caller
 *            | u16 chain entries (0: the chain is [caller]) | per entry: u16 bytes | text
 *            | script (the rest: UTF-8, or UTF-16LE with flag 4)
 *                                              flags: 1 may write, 2 may call, 4 the script is
 *                                              UTF-16LE (it is not well-formed Unicode: a lone
 *                                              surrogate has no UTF-8 form, and must reach the isolate)
 *   RESUME:  u32 runSeq | u32 callId | u16 code (0 = success, else 1 + index in ERROR_CODES)
 *            | u32 message bytes | message | body (the rest)
 *                     call `callId` of suspended run `runSeq` settled (success: body holds the
 *                     callee's value)
 *   EXPIRE:  u32 runSeq                          suspended run `runSeq` is out of time
 *   CLOSE:   (nothing)                           finish what was sent, then exit
 * RUN, RESUME and EXPIRE are *slices*: each runs a part of a run on the thread.
 *
 * Host → node: one binary message per slice, in the order the slices were sent, written by the
 * thread before it starts the next slice when the slice changed the namespace or suspended (so
 * that a run whose effects are on disk is never reported as lost when the host dies right after
 * it, and calls go out at once):
 *   u32 length of the rest (at most MAX_REPLY_BYTES) | u8 type | …
 *   OUTCOME:   u32 seq | u16 code (0 = success, else 1 + index in ERROR_CODES) | u8 flags
 *              | f64 runMs | f64 cpuMs | f64 callsMs | u32 message bytes | message (UTF-8)
 *              | [u32 effects bytes | effects (src/live/effects.ts), with FLAG_EFFECTS] | body (UTF-8)
 *   SUSPENDED: u32 seq | f64 remainingMs | calls (JSON text: [[callId, peer, script, timeoutMs], …])
 *   SKIPPED:   u32 seq                     (a RESUME or EXPIRE for a run that had ended)
 *   READY:     (nothing)
 * `seq` counts the slices a host received, from 0; a run is named by the seq of its RUN. An
 * OUTCOME flagged DETACHED answers a suspended run outside that order (it lost its context to
 * another run's abort): its seq is the run's. A run's effects (its committed writes and emitted
 * events, for its context's watchers) ride on its OUTCOME, all of its slices' together.
 */
import { ERROR_CODES, type ErrorCode } from '../errors/index.js'
import { decodeEffects, encodeEffects } from '../live/index.js'
import type { RunOutcome } from '../protocol/index.js'
import type { RunRequest, SandboxContext } from './run.js'

export const MESSAGE = { CONTEXT: 0, RUN: 1, CLOSE: 2, RESUME: 3, EXPIRE: 4 } as const
export const REPLY = { OUTCOME: 1, READY: 2, SUSPENDED: 3, SKIPPED: 4 } as const
/** Outcome flag: the engine rebuilt its context (or isolate) after this slice. */
export const FLAG_REBUILT = 1
/** Outcome flag: the outcome of a suspended run, outside the order of slices (seq is the run's). */
export const FLAG_DETACHED = 2
/** Outcome flag: the run's effects (for its context's watchers) follow the message. */
const FLAG_EFFECTS = 4
/** RUN flags. */
export const RUN_FLAG = { WRITE: 1, CALL: 2, UTF16: 4 } as const
/**
 * The largest frame a host accepts. The node ends a frame once it passes FRAME_SOFT_BYTES, so a
 * frame is larger only by its last record: a script (MAX_SCRIPT_BYTES, a circle may raise it) or
 * a callee's answer (its output and logs limits).
 */
export const MAX_FRAME_BYTES = 1 << 30
/** Past this many bytes the node sends what it has encoded and starts the next frame. */
export const FRAME_SOFT_BYTES = 16 << 20
/**
 * The largest reply the node accepts from a host: an outcome carries a run's output, logs and
 * effects, each bounded by its context's limits well below it. A host that claims more is broken
 * (or hostile): the node would otherwise buffer whatever it announces.
 */
export const MAX_REPLY_BYTES = 256 << 20

/** A call as the host hands it on: [callId, peer, script, timeoutMs (0: none)]. */
export type WireCall = readonly [number, string, string, number]

/** What settles a suspended run's call: the callee's outcome, or the error that refused it. */
export type Settlement = Pick<RunOutcome, 'code' | 'message' | 'body'>

/** A continuation of a suspended run as the node queues it: a call settled, or its time is up. */
export type Continuation = { readonly callId: number; readonly settled: Settlement } | 'expire'

const CODE_INDEX = new Map<ErrorCode, number>(ERROR_CODES.map((code, i) => [code, i + 1]))

/**
 * A growable byte buffer that records are written into, reused from one frame to the next: a
 * frame or a batch of outcomes costs no allocation once it has grown to its usual size.
 */
export class RecordWriter {
  buf: Buffer
  at = 0
  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  reserve(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes))
    this.buf.copy(grown, 0, 0, this.at)
    this.buf = grown
  }

  /** Start a length-prefixed unit (a record, a frame); returns where its prefix is. */
  open(): number {
    this.reserve(4)
    const start = this.at
    this.at += 4
    return start
  }

  /** End the unit opened at `start`: its prefix gets the bytes written since. */
  close(start: number): void {
    this.buf.writeUInt32LE(this.at - start - 4, start)
  }

  u8(value: number): void {
    this.reserve(1)
    this.at = this.buf.writeUInt8(value, this.at)
  }

  u16(value: number): void {
    this.reserve(2)
    this.at = this.buf.writeUInt16LE(value, this.at)
  }

  u32(value: number): void {
    this.reserve(4)
    this.at = this.buf.writeUInt32LE(value >>> 0, this.at)
  }

  f64(value: number): void {
    this.reserve(8)
    this.at = this.buf.writeDoubleLE(value, this.at)
  }

  /** Write `text` as UTF-8; returns its bytes. (A UTF-16 unit is at most 3 bytes of UTF-8.) */
  text(text: string): number {
    this.reserve(text.length * 3)
    const bytes = this.buf.write(text, this.at)
    this.at += bytes
    return bytes
  }

  /** Write `text` as UTF-16LE code units (lone surrogates kept); returns its bytes. */
  utf16(text: string): number {
    this.reserve(text.length * 2)
    const bytes = this.buf.write(text, this.at, 'utf16le')
    this.at += bytes
    return bytes
  }

  /** `u16 bytes | text`, for short texts (keys); a longer one is refused. */
  shortText(text: string): void {
    const start = this.at
    this.u16(0)
    const bytes = this.text(text)
    if (bytes > 0xffff) throw new RangeError('a short text of the wire is longer than 65,535 bytes')
    this.buf.writeUInt16LE(bytes, start)
  }

  bytes(from: Uint8Array): void {
    this.reserve(from.length)
    this.buf.set(from, this.at)
    this.at += from.length
  }

  /** A copy of what was written (its own memory: a socket may hold it), and start again. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.at))
    this.reset()
    return out
  }

  /** Start again; give back memory a rare large batch took. */
  reset(): void {
    this.at = 0
    if (this.buf.length > 64 * this.initialBytes) this.buf = Buffer.allocUnsafe(this.initialBytes)
  }
}

/**
 * The node's encoder of frames to a host (one per pool, reused: a frame is copied out when sent).
 * `begin`, the records, then `end`.
 */
export class FrameWriter {
  private readonly w = new RecordWriter()
  private frame = -1

  /** Bytes in the frame being written. */
  get bytes(): number {
    return this.w.at
  }

  begin(): void {
    this.w.reset()
    this.frame = this.w.open()
  }

  context(ctxId: number, context: SandboxContext): void {
    const r = this.record(MESSAGE.CONTEXT)
    this.w.u32(ctxId)
    this.w.text(JSON.stringify(context))
    this.w.close(r)
  }

  /** A run's start. */
  run(ctxId: number, run: RunRequest): void {
    const { w } = this
    const r = this.record(MESSAGE.RUN)
    w.u32(ctxId)
    // A script with a lone surrogate has no UTF-8 form (it would arrive with U+FFFD in its place):
    // it crosses as UTF-16 code units, as it was written.
    const utf16 = !(run.script as string & { isWellFormed(): boolean }).isWellFormed()
    w.u8((run.canWrite ? RUN_FLAG.WRITE : 0) | (run.canCall ? RUN_FLAG.CALL : 0) | (utf16 ? RUN_FLAG.UTF16 : 0))
    w.f64(run.timeoutMs)
    w.shortText(run.caller)
    const chain = run.chain ?? []
    if (chain.length > 0xffff) throw new RangeError('a call chain of more than 65,535 entries')
    w.u16(chain.length)
    for (const entry of chain) w.shortText(entry)
    if (utf16) w.utf16(run.script)
    else w.text(run.script)
    w.close(r)
  }

  /** Call `callId` of the run the host knows as `runSeq` settled. */
  resume(runSeq: number, callId: number, settled: Settlement): void {
    const { w } = this
    const r = this.record(MESSAGE.RESUME)
    w.u32(runSeq)
    w.u32(callId)
    w.u16(settled.code === null ? 0 : CODE_INDEX.get(settled.code)!)
    const lengthAt = w.at
    w.u32(0)
    w.buf.writeUInt32LE(w.text(settled.message), lengthAt)
    w.text(settled.body)
    w.close(r)
  }

  /** Suspended run `runSeq` is out of time. */
  expire(runSeq: number): void {
    const r = this.record(MESSAGE.EXPIRE)
    this.w.u32(runSeq)
    this.w.close(r)
  }

  /** The frame, ready to write (a copy). */
  end(): Buffer {
    this.w.close(this.frame)
    return this.w.take()
  }

  private record(type: number): number {
    const start = this.w.open()
    this.w.u8(type)
    return start
  }
}

/** The frame that asks a host to finish what it was sent and exit. */
export const CLOSE_FRAME: Buffer = (() => {
  const buf = Buffer.alloc(4 + 4 + 1)
  buf.writeUInt32LE(5, 0)
  buf.writeUInt32LE(1, 4)
  buf.writeUInt8(MESSAGE.CLOSE, 8)
  return buf
})()

/** A node → host record, decoded and checked (host side). */
export type HostMessage =
  | { readonly type: typeof MESSAGE.CONTEXT; readonly ctxId: number; readonly context: SandboxContext }
  | { readonly type: typeof MESSAGE.RUN; readonly ctxId: number; readonly request: RunRequest }
  | { readonly type: typeof MESSAGE.RESUME; readonly runSeq: number; readonly callId: number; readonly settled: Settlement }
  | { readonly type: typeof MESSAGE.EXPIRE; readonly runSeq: number }
  | { readonly type: typeof MESSAGE.CLOSE }

/** A record the host refuses: the host stops (the node sees it die) rather than guess. */
export class MalformedRecord extends Error {}

/**
 * The records of one frame (host side), handed to `onMessage` in order: `frame` holds the
 * records, without the frame's length prefix. Each is decoded when its turn comes, so the slices
 * before a malformed record have run (and been marked) when it throws.
 */
export function decodeFrame(frame: Buffer, onMessage: (message: HostMessage) => void): void {
  let at = 0
  while (at < frame.length) {
    if (frame.length - at < 5) throw new MalformedRecord('a record shorter than its header')
    const length = frame.readUInt32LE(at)
    const start = at + 4
    const end = start + length
    if (length < 1 || end > frame.length) throw new MalformedRecord(`a record of ${length} bytes with ${frame.length - start} left in its frame`)
    onMessage(decodeRecord(frame, start, end))
    at = end
  }
}

/** The record being decoded (host side; one at a time, on the script thread). */
let rec: Buffer = Buffer.alloc(0)
let recAt = 0
let recEnd = 0
let recType = 0

function need(bytes: number): void {
  if (recAt + bytes > recEnd) throw new MalformedRecord(`a truncated record of type ${recType}`)
}

function readU16(): number {
  need(2)
  const value = rec.readUInt16LE(recAt)
  recAt += 2
  return value
}

function readU32(): number {
  need(4)
  const value = rec.readUInt32LE(recAt)
  recAt += 4
  return value
}

function readText(bytes: number): string {
  need(bytes)
  const text = bytes === 0 ? '' : rec.toString('utf8', recAt, recAt + bytes)
  recAt += bytes
  return text
}

function decodeRecord(buf: Buffer, start: number, end: number): HostMessage {
  rec = buf
  recAt = start + 1
  recEnd = end
  const type = (recType = buf.readUInt8(start))
  switch (type) {
    case MESSAGE.RUN: {
      const ctxId = readU32()
      need(1 + 8)
      const flags = buf.readUInt8(recAt)
      const timeoutMs = buf.readDoubleLE(recAt + 1)
      recAt += 9
      if ((flags & ~(RUN_FLAG.WRITE | RUN_FLAG.CALL | RUN_FLAG.UTF16)) !== 0) throw new MalformedRecord(`a run with unknown flags ${flags}`)
      if (!(timeoutMs >= 0)) throw new MalformedRecord('a run whose time limit is not a number of 0 or more')
      const caller = readText(readU16())
      const entries = readU16()
      let chain: string[] | undefined
      if (entries > 0) {
        chain = []
        for (let i = 0; i < entries; i++) chain.push(readText(readU16()))
      }
      if ((flags & RUN_FLAG.UTF16) !== 0 && (end - recAt) % 2 !== 0) throw new MalformedRecord('a UTF-16 script of an odd number of bytes')
      const script = buf.toString((flags & RUN_FLAG.UTF16) !== 0 ? 'utf16le' : 'utf8', recAt, end)
      const request: RunRequest =
        chain === undefined
          ? { script, caller, canWrite: (flags & RUN_FLAG.WRITE) !== 0, canCall: (flags & RUN_FLAG.CALL) !== 0, timeoutMs }
          : { script, caller, canWrite: (flags & RUN_FLAG.WRITE) !== 0, canCall: (flags & RUN_FLAG.CALL) !== 0, timeoutMs, chain }
      return { type, ctxId, request }
    }
    case MESSAGE.RESUME: {
      const runSeq = readU32()
      const callId = readU32()
      const codeIndex = readU16()
      const code = codeIndex === 0 ? null : ERROR_CODES[codeIndex - 1]
      if (code === undefined) throw new MalformedRecord(`a settlement with an unknown error code ${codeIndex}`)
      const message = readText(readU32())
      return { type, runSeq, callId, settled: { code, message, body: buf.toString('utf8', recAt, end) } }
    }
    case MESSAGE.EXPIRE: {
      const runSeq = readU32()
      if (recAt !== end) throw new MalformedRecord('an expiry with trailing bytes')
      return { type, runSeq }
    }
    case MESSAGE.CONTEXT: {
      const ctxId = readU32()
      let context: unknown
      try {
        context = JSON.parse(buf.toString('utf8', recAt, end))
      } catch {
        throw new MalformedRecord('context facts that are not JSON')
      }
      if (!isSandboxContext(context)) throw new MalformedRecord('context facts of the wrong shape')
      return { type, ctxId, context }
    }
    case MESSAGE.CLOSE:
      if (recAt !== end) throw new MalformedRecord('a close with trailing bytes')
      return { type }
    default:
      throw new MalformedRecord(`a record of unknown type ${type}`)
  }
}

function isNumberRecord(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  for (const field of Object.values(value)) if (typeof field !== 'number' || !(field >= 0)) return false
  return true
}

function isSandboxContext(value: unknown): value is SandboxContext {
  if (typeof value !== 'object' || value === null) return false
  const facts = value as Record<string, unknown>
  return (
    typeof facts.circle === 'string' &&
    typeof facts.root === 'string' &&
    typeof facts.dbPathLabel === 'string' &&
    isNumberRecord(facts.limits) &&
    isNumberRecord(facts.quota)
  )
}

const OUTCOME_HEADER = 4 + 1 + 4 + 2 + 1 + 8 + 8 + 8 + 4

/** Write one slice's outcome (host side). */
export function writeOutcome(w: RecordWriter, seq: number, outcome: RunOutcome, flags: number): void {
  const effects = outcome.effects === undefined ? undefined : encodeEffects(outcome.effects)
  w.reserve(OUTCOME_HEADER)
  const start = w.open()
  w.u8(REPLY.OUTCOME)
  w.u32(seq)
  w.u16(outcome.code === null ? 0 : CODE_INDEX.get(outcome.code)!)
  w.u8(effects === undefined ? flags : flags | FLAG_EFFECTS)
  w.f64(outcome.runMs)
  w.f64(outcome.cpuMs)
  w.f64(outcome.callsMs)
  const lengthAt = w.at
  w.u32(0)
  w.buf.writeUInt32LE(w.text(outcome.message), lengthAt)
  if (effects !== undefined) {
    w.u32(effects.length)
    w.bytes(effects)
  }
  w.text(outcome.body)
  w.close(start)
}

/** A slice ended with its run suspended, waiting on calls (`calls`: those it started). */
export function writeSuspended(w: RecordWriter, seq: number, remainingMs: number, calls: readonly WireCall[]): void {
  const start = w.open()
  w.u8(REPLY.SUSPENDED)
  w.u32(seq)
  w.f64(remainingMs)
  w.text(JSON.stringify(calls))
  w.close(start)
}

export function writeSkipped(w: RecordWriter, seq: number): void {
  const start = w.open()
  w.u8(REPLY.SKIPPED)
  w.u32(seq)
  w.close(start)
}

export function writeReady(w: RecordWriter): void {
  const start = w.open()
  w.u8(REPLY.READY)
  w.close(start)
}

export type HostReply =
  | { readonly type: 'outcome'; readonly seq: number; readonly flags: number; readonly outcome: RunOutcome }
  | { readonly type: 'suspended'; readonly seq: number; readonly remainingMs: number; readonly calls: readonly WireCall[] }
  | { readonly type: 'skipped'; readonly seq: number }
  | { readonly type: 'ready' }

/**
 * Reassembles `u32 length | bytes` units from a byte stream. A unit whose announced length
 * passes `maxBytes` throws: the other side is broken (or hostile), and would otherwise make this
 * side buffer whatever it announces.
 */
class LengthPrefixedReader {
  /**
   * Chunks of an incomplete unit, kept apart until it is complete: a large unit arrives in many
   * chunks, and joining them on every chunk would copy it again each time.
   */
  private chunks: Buffer[] = []
  private buffered = 0
  /** Bytes the unit being gathered needs in all, once its length prefix is known (0: not yet). */
  private needed = 0

  constructor(
    private readonly maxBytes: number,
    private readonly what: string,
  ) {}

  /** Feed a chunk; calls `onUnit` for every complete unit in it (`start`–`end` of `buf`, after its prefix). */
  push(chunk: Buffer, onUnit: (buf: Buffer, start: number, end: number) => void): void {
    let buf = chunk
    if (this.chunks.length > 0) {
      // Keep a copy: the chunk's memory may be reused by the stream.
      this.chunks.push(Buffer.from(chunk))
      this.buffered += chunk.length
      if (this.needed === 0 && this.buffered >= 4) this.needed = 4 + this.check(Buffer.concat(this.chunks, 4).readUInt32LE(0))
      if (this.needed === 0 || this.buffered < this.needed) return
      buf = Buffer.concat(this.chunks, this.buffered)
      this.chunks = []
      this.buffered = 0
      this.needed = 0
    }
    let at = 0
    while (buf.length - at >= 4) {
      const length = this.check(buf.readUInt32LE(at))
      if (buf.length - at - 4 < length) break
      onUnit(buf, at + 4, at + 4 + length)
      at += 4 + length
    }
    if (at < buf.length) {
      const rest = Buffer.from(buf.subarray(at))
      this.chunks = [rest]
      this.buffered = rest.length
      if (rest.length >= 4) this.needed = 4 + this.check(rest.readUInt32LE(0))
    }
  }

  private check(length: number): number {
    if (length > this.maxBytes) throw new Error(`${this.what} of ${length} bytes, more than ${this.maxBytes}`)
    return length
  }
}

/**
 * Reassembles host replies from a byte stream (node side). The host may be compromised: a
 * malformed stream throws, and the host is then treated as dead.
 */
export class ReplyReader {
  private readonly units = new LengthPrefixedReader(MAX_REPLY_BYTES, 'sandbox host sent a reply')

  /** Feed a chunk; calls `onReply` for every complete reply in it. */
  push(chunk: Buffer, onReply: (reply: HostReply) => void): void {
    this.units.push(chunk, (buf, start, end) => onReply(decodeReply(buf, start, end)))
  }
}

/** Splits frames out of the node's byte stream (host side): `onFrame` gets a frame's records. */
export class FrameReader {
  private readonly units = new LengthPrefixedReader(MAX_FRAME_BYTES, 'the node sent a frame')

  push(chunk: Buffer, onFrame: (records: Buffer) => void): void {
    this.units.push(chunk, (buf, start, end) => onFrame(buf.subarray(start, end)))
  }
}

function malformed(what: string): never {
  throw new Error(`sandbox host sent ${what}`)
}

function decodeReply(buf: Buffer, start: number, end: number): HostReply {
  const length = end - start
  if (length < 1) malformed('an empty reply')
  const type = buf.readUInt8(start)
  if (type === REPLY.READY) {
    if (length !== 1) malformed('a malformed READY')
    return { type: 'ready' }
  }
  if (type === REPLY.SKIPPED) {
    if (length !== 5) malformed('a malformed SKIPPED')
    return { type: 'skipped', seq: buf.readUInt32LE(start + 1) }
  }
  if (type === REPLY.SUSPENDED) {
    if (length < 13) malformed('a truncated SUSPENDED')
    const remainingMs = buf.readDoubleLE(start + 5)
    if (!Number.isFinite(remainingMs)) malformed('a suspension with a time left that is not a number')
    let calls: unknown
    try {
      calls = JSON.parse(buf.toString('utf8', start + 13, end))
    } catch {
      malformed('malformed calls')
    }
    if (!Array.isArray(calls) || !calls.every(isWireCall)) malformed('malformed calls')
    return { type: 'suspended', seq: buf.readUInt32LE(start + 1), remainingMs, calls }
  }
  if (type !== REPLY.OUTCOME) malformed(`an unknown reply type ${type}`)
  if (length < OUTCOME_HEADER - 4) malformed('a truncated outcome')
  const seq = buf.readUInt32LE(start + 1)
  const codeIndex = buf.readUInt16LE(start + 5)
  const flags = buf.readUInt8(start + 7)
  if ((flags & ~(FLAG_REBUILT | FLAG_DETACHED | FLAG_EFFECTS)) !== 0) malformed(`an outcome with unknown flags ${flags}`)
  const runMs = buf.readDoubleLE(start + 8)
  const cpuMs = buf.readDoubleLE(start + 16)
  const callsMs = buf.readDoubleLE(start + 24)
  if (!(runMs >= 0 && cpuMs >= 0 && callsMs >= 0 && runMs + cpuMs + callsMs < Infinity)) malformed('an outcome with times that are not numbers')
  const messageBytes = buf.readUInt32LE(start + 32)
  const messageEnd = start + 36 + messageBytes
  if (messageEnd > end) malformed('a truncated outcome')
  const code = codeIndex === 0 ? null : ERROR_CODES[codeIndex - 1]
  if (code === undefined) malformed(`an unknown error code ${codeIndex}`)
  const message = messageBytes === 0 ? '' : buf.toString('utf8', start + 36, messageEnd)
  if ((flags & FLAG_EFFECTS) === 0) return { type: 'outcome', seq, flags, outcome: { code, message, body: buf.toString('utf8', messageEnd, end), runMs, cpuMs, callsMs } }
  if (messageEnd + 4 > end) malformed('a truncated outcome')
  const effectsEnd = messageEnd + 4 + buf.readUInt32LE(messageEnd)
  if (effectsEnd > end) malformed('a truncated outcome')
  // Decoded from a view bounded by the section: its reads cannot wander into the next reply.
  const section = buf.subarray(messageEnd + 4, effectsEnd)
  const effects = decodeEffects(section, 0, section.length)
  return { type: 'outcome', seq, flags, outcome: { code, message, body: buf.toString('utf8', effectsEnd, end), runMs, cpuMs, callsMs, effects } }
}

/** The host is not trusted with the node's state: what it hands on is checked for shape here (the node judges the values). */
function isWireCall(value: unknown): value is WireCall {
  return (
    Array.isArray(value) &&
    value.length === 4 &&
    Number.isSafeInteger(value[0]) &&
    typeof value[1] === 'string' &&
    typeof value[2] === 'string' &&
    Number.isSafeInteger(value[3]) &&
    (value[3] as number) >= 0
  )
}

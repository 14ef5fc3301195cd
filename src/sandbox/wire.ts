/**
 * The hand-off format between the node and a sandbox host — designed for what the node's main
 * thread pays per run, since that thread serves every socket too.
 *
 * Node → host: frames of newline-terminated JSON text (JSON.stringify never emits a raw
 * newline). A frame is an array of messages, each a small array:
 *   [CONTEXT, ctxId, SandboxContext]          the facts of a context, sent once per host (and
 *                                             again when they change)
 *   [RUN, ctxId, script, caller, flags, timeoutMs(, chain)]
 *                                             flags: 1 may write, 2 may call; chain: CALL_CHAIN
 *                                             when it is not [caller]
 *   [RESUME, runSeq, callId, code, message, body]   call `callId` of suspended run `runSeq`
 *                                             settled (code null: body holds the callee's value)
 *   [EXPIRE, runSeq]                          suspended run `runSeq` is out of time
 *   [CLOSE]                                   finish what was sent, then exit
 * A RUN's own fields are concatenated as text: the script is the only string that needs
 * escaping. RUN, RESUME and EXPIRE are *slices*: each runs a part of a run on the thread.
 *
 * Host → node: one binary message per slice, in the order the slices were sent, written by the
 * thread before it starts the next slice when the slice changed the namespace or suspended (so
 * that a run whose effects are on disk is never reported as lost when the host dies right after
 * it, and calls go out at once):
 *   u32 length of the rest | u8 type | …
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
export const RUN_FLAG = { WRITE: 1, CALL: 2 } as const

/** A call as the host hands it on: [callId, peer, script, timeoutMs (0: none)]. */
export type WireCall = readonly [number, string, string, number]

export type HostMessage =
  | readonly [typeof MESSAGE.CONTEXT, number, SandboxContext]
  | readonly [typeof MESSAGE.RUN, number, string, string, number, number, (readonly string[])?]
  | readonly [typeof MESSAGE.RESUME, number, number, ErrorCode | null, string, string]
  | readonly [typeof MESSAGE.EXPIRE, number]
  | readonly [typeof MESSAGE.CLOSE]

export function encodeContextMessage(ctxId: number, context: SandboxContext): string {
  return JSON.stringify([MESSAGE.CONTEXT, ctxId, context])
}

/** A run message. The caller is a hex key or '' and needs no escaping. */
export function encodeRunMessage(ctxId: number, run: RunRequest): string {
  const flags = (run.canWrite ? RUN_FLAG.WRITE : 0) | (run.canCall ? RUN_FLAG.CALL : 0)
  const chain = run.chain === undefined ? '' : `,${JSON.stringify(run.chain)}`
  return `[1,${ctxId},${JSON.stringify(run.script)},"${run.caller}",${flags},${run.timeoutMs}${chain}]`
}

/** Call `callId` of the run the host knows as `runSeq` settled. */
export function encodeResumeMessage(runSeq: number, callId: number, settled: Pick<RunOutcome, 'code' | 'message' | 'body'>): string {
  return JSON.stringify([MESSAGE.RESUME, runSeq, callId, settled.code, settled.message, settled.body])
}

export function encodeExpireMessage(runSeq: number): string {
  return `[${MESSAGE.EXPIRE},${runSeq}]`
}

export const CLOSE_FRAME = '[[2]]\n'

/** A frame of encoded messages, ready to write. */
export function encodeFrame(messages: readonly string[]): string {
  return `[${messages.join(',')}]\n`
}

const CODE_INDEX = new Map<ErrorCode, number>(ERROR_CODES.map((code, i) => [code, i + 1]))
const OUTCOME_HEADER = 4 + 1 + 4 + 2 + 1 + 8 + 8 + 8 + 4

/** Encode one slice's outcome (host side). */
export function encodeOutcome(seq: number, outcome: RunOutcome, flags: number): Buffer {
  const messageBytes = Buffer.byteLength(outcome.message)
  const bodyBytes = Buffer.byteLength(outcome.body)
  const effects = outcome.effects === undefined ? undefined : encodeEffects(outcome.effects)
  const effectsBytes = effects === undefined ? 0 : 4 + effects.length
  const buf = Buffer.allocUnsafe(OUTCOME_HEADER + messageBytes + effectsBytes + bodyBytes)
  let at = buf.writeUInt32LE(buf.length - 4, 0)
  at = buf.writeUInt8(REPLY.OUTCOME, at)
  at = buf.writeUInt32LE(seq >>> 0, at)
  at = buf.writeUInt16LE(outcome.code === null ? 0 : CODE_INDEX.get(outcome.code)!, at)
  at = buf.writeUInt8(effects === undefined ? flags : flags | FLAG_EFFECTS, at)
  at = buf.writeDoubleLE(outcome.runMs, at)
  at = buf.writeDoubleLE(outcome.cpuMs, at)
  at = buf.writeDoubleLE(outcome.callsMs, at)
  at = buf.writeUInt32LE(messageBytes, at)
  at += buf.write(outcome.message, at)
  if (effects !== undefined) {
    at = buf.writeUInt32LE(effects.length, at)
    at += effects.copy(buf, at)
  }
  buf.write(outcome.body, at)
  return buf
}

/** A slice ended with its run suspended, waiting on calls (`calls`: those it started). */
export function encodeSuspended(seq: number, remainingMs: number, calls: readonly WireCall[]): Buffer {
  const text = JSON.stringify(calls)
  const buf = Buffer.allocUnsafe(4 + 1 + 4 + 8 + Buffer.byteLength(text))
  let at = buf.writeUInt32LE(buf.length - 4, 0)
  at = buf.writeUInt8(REPLY.SUSPENDED, at)
  at = buf.writeUInt32LE(seq >>> 0, at)
  at = buf.writeDoubleLE(remainingMs, at)
  buf.write(text, at)
  return buf
}

export function encodeSkipped(seq: number): Buffer {
  const buf = Buffer.allocUnsafe(9)
  buf.writeUInt32LE(5, 0)
  buf.writeUInt8(REPLY.SKIPPED, 4)
  buf.writeUInt32LE(seq >>> 0, 5)
  return buf
}

export function encodeReady(): Buffer {
  const buf = Buffer.allocUnsafe(5)
  buf.writeUInt32LE(1, 0)
  buf.writeUInt8(REPLY.READY, 4)
  return buf
}

export type HostReply =
  | { readonly type: 'outcome'; readonly seq: number; readonly flags: number; readonly outcome: RunOutcome }
  | { readonly type: 'suspended'; readonly seq: number; readonly remainingMs: number; readonly calls: readonly WireCall[] }
  | { readonly type: 'skipped'; readonly seq: number }
  | { readonly type: 'ready' }

/**
 * Reassembles host replies from a byte stream (node side). A malformed stream — which only a
 * broken host could produce — throws, and the host is then treated as dead.
 */
export class ReplyReader {
  /**
   * Chunks of an incomplete reply, kept apart until it is complete: a large outcome arrives in
   * many chunks, and joining them on every chunk would copy it again each time.
   */
  private chunks: Buffer[] = []
  private buffered = 0
  /** Bytes the reply being gathered needs in all, once its length prefix is known (0: not yet). */
  private needed = 0

  /** Feed a chunk; calls `onReply` for every complete reply in it. */
  push(chunk: Buffer, onReply: (reply: HostReply) => void): void {
    let buf = chunk
    if (this.chunks.length > 0) {
      // Keep a copy: the chunk's memory may be reused by the stream.
      this.chunks.push(Buffer.from(chunk))
      this.buffered += chunk.length
      if (this.needed === 0 && this.buffered >= 4) this.needed = 4 + Buffer.concat(this.chunks, 4).readUInt32LE(0)
      if (this.needed === 0 || this.buffered < this.needed) return
      buf = Buffer.concat(this.chunks, this.buffered)
      this.chunks = []
      this.buffered = 0
      this.needed = 0
    }
    let at = 0
    while (buf.length - at >= 4) {
      const length = buf.readUInt32LE(at)
      if (buf.length - at - 4 < length) break
      onReply(decodeReply(buf, at + 4, at + 4 + length))
      at += 4 + length
    }
    if (at < buf.length) {
      const rest = Buffer.from(buf.subarray(at))
      this.chunks = [rest]
      this.buffered = rest.length
      if (rest.length >= 4) this.needed = 4 + rest.readUInt32LE(0)
    }
  }
}

function decodeReply(buf: Buffer, start: number, end: number): HostReply {
  const type = buf.readUInt8(start)
  if (type === REPLY.READY) return { type: 'ready' }
  if (type === REPLY.SKIPPED) return { type: 'skipped', seq: buf.readUInt32LE(start + 1) }
  if (type === REPLY.SUSPENDED) {
    const calls = JSON.parse(buf.toString('utf8', start + 13, end)) as unknown
    if (!Array.isArray(calls) || !calls.every(isWireCall)) throw new Error('sandbox host sent malformed calls')
    return { type: 'suspended', seq: buf.readUInt32LE(start + 1), remainingMs: buf.readDoubleLE(start + 5), calls }
  }
  if (type !== REPLY.OUTCOME) throw new Error(`sandbox host sent an unknown reply type ${type}`)
  const seq = buf.readUInt32LE(start + 1)
  const codeIndex = buf.readUInt16LE(start + 5)
  const flags = buf.readUInt8(start + 7)
  const runMs = buf.readDoubleLE(start + 8)
  const cpuMs = buf.readDoubleLE(start + 16)
  const callsMs = buf.readDoubleLE(start + 24)
  const messageBytes = buf.readUInt32LE(start + 32)
  const messageEnd = start + 36 + messageBytes
  if (messageEnd > end) throw new Error('sandbox host sent a truncated outcome')
  const code = codeIndex === 0 ? null : ERROR_CODES[codeIndex - 1]
  if (code === undefined) throw new Error(`sandbox host sent an unknown error code ${codeIndex}`)
  const message = messageBytes === 0 ? '' : buf.toString('utf8', start + 36, messageEnd)
  if ((flags & FLAG_EFFECTS) === 0) return { type: 'outcome', seq, flags, outcome: { code, message, body: buf.toString('utf8', messageEnd, end), runMs, cpuMs, callsMs } }
  const effectsEnd = messageEnd + 4 + buf.readUInt32LE(messageEnd)
  if (effectsEnd > end) throw new Error('sandbox host sent a truncated outcome')
  const effects = decodeEffects(buf, messageEnd + 4, effectsEnd)
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

/** Splits newline-terminated frames out of a byte stream (host side). */
export class FrameReader {
  private pending: Buffer | undefined

  push(chunk: Buffer, onFrame: (text: string) => void): void {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    let at = 0
    for (;;) {
      const newline = buf.indexOf(10, at)
      if (newline < 0) break
      onFrame(buf.toString('utf8', at, newline))
      at = newline + 1
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at))
  }
}

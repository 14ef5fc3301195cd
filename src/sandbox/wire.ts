/**
 * The hand-off format between the node and a sandbox host — designed for what the node's main
 * thread pays per run, since that thread serves every socket too.
 *
 * Node → host: frames of newline-terminated JSON text (JSON.stringify never emits a raw
 * newline). A frame is an array of messages, each a small array:
 *   [CONTEXT, ctxId, SandboxContext]          the facts of a context, sent once per host (and
 *                                             again when they change)
 *   [RUN, ctxId, script, caller, canWrite, timeoutMs]
 *   [CLOSE]                                   finish what was sent, then exit
 * The run's own fields are concatenated as text: the script is the only string that needs
 * escaping.
 *
 * Host → node: one binary message per run outcome, written by the thread that ran it before
 * it starts the next run (so that a run whose effects are on disk is never reported as lost when
 * the host dies right after it):
 *   u32 length of the rest | u8 type | …
 *   OUTCOME: u32 seq | u16 code (0 = success, else 1 + index in ERROR_CODES) | u8 flags
 *            | f64 runMs | f64 cpuMs | u32 message bytes | message (UTF-8)
 *            | [u32 effects bytes | effects (src/live/effects.ts), with FLAG_EFFECTS] | body (UTF-8)
 *   READY:   (nothing)
 * `seq` counts the runs a host received, from 0; outcomes come back in that order.
 */
import { ERROR_CODES, type ErrorCode } from '../errors/index.js'
import { decodeEffects, encodeEffects } from '../live/index.js'
import type { RunOutcome } from '../protocol/index.js'
import type { RunRequest, SandboxContext } from './run.js'

export const MESSAGE = { CONTEXT: 0, RUN: 1, CLOSE: 2 } as const
export const REPLY = { OUTCOME: 1, READY: 2 } as const
/** Outcome flag: the engine rebuilt its context (or isolate) after this run. */
export const FLAG_REBUILT = 1
/** Outcome flag: the run's effects (for its context's watchers) follow the message. */
const FLAG_EFFECTS = 2

export type HostMessage =
  | readonly [typeof MESSAGE.CONTEXT, number, SandboxContext]
  | readonly [typeof MESSAGE.RUN, number, string, string, 0 | 1, number]
  | readonly [typeof MESSAGE.CLOSE]

export function encodeContextMessage(ctxId: number, context: SandboxContext): string {
  return JSON.stringify([MESSAGE.CONTEXT, ctxId, context])
}

/** A run message. The caller is a hex key or '' and needs no escaping. */
export function encodeRunMessage(ctxId: number, run: RunRequest): string {
  return `[1,${ctxId},${JSON.stringify(run.script)},"${run.caller}",${run.canWrite ? 1 : 0},${run.timeoutMs}]`
}

export const CLOSE_FRAME = '[[2]]\n'

/** A frame of encoded messages, ready to write. */
export function encodeFrame(messages: readonly string[]): string {
  return `[${messages.join(',')}]\n`
}

const CODE_INDEX = new Map<ErrorCode, number>(ERROR_CODES.map((code, i) => [code, i + 1]))
const OUTCOME_HEADER = 4 + 1 + 4 + 2 + 1 + 8 + 8 + 4

/** Encode one run's outcome (host side). */
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
  at = buf.writeUInt32LE(messageBytes, at)
  at += buf.write(outcome.message, at)
  if (effects !== undefined) {
    at = buf.writeUInt32LE(effects.length, at)
    at += effects.copy(buf, at)
  }
  buf.write(outcome.body, at)
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
  if (type !== REPLY.OUTCOME) throw new Error(`sandbox host sent an unknown reply type ${type}`)
  const seq = buf.readUInt32LE(start + 1)
  const codeIndex = buf.readUInt16LE(start + 5)
  const flags = buf.readUInt8(start + 7)
  const runMs = buf.readDoubleLE(start + 8)
  const cpuMs = buf.readDoubleLE(start + 16)
  const messageBytes = buf.readUInt32LE(start + 24)
  const messageEnd = start + 28 + messageBytes
  if (messageEnd > end) throw new Error('sandbox host sent a truncated outcome')
  const code = codeIndex === 0 ? null : ERROR_CODES[codeIndex - 1]
  if (code === undefined) throw new Error(`sandbox host sent an unknown error code ${codeIndex}`)
  const message = messageBytes === 0 ? '' : buf.toString('utf8', start + 28, messageEnd)
  if ((flags & FLAG_EFFECTS) === 0) return { type: 'outcome', seq, flags, outcome: { code, message, body: buf.toString('utf8', messageEnd, end), runMs, cpuMs } }
  const effectsEnd = messageEnd + 4 + buf.readUInt32LE(messageEnd)
  if (effectsEnd > end) throw new Error('sandbox host sent a truncated outcome')
  const effects = decodeEffects(buf, messageEnd + 4, effectsEnd)
  return { type: 'outcome', seq, flags, outcome: { code, message, body: buf.toString('utf8', effectsEnd, end), runMs, cpuMs, effects } }
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

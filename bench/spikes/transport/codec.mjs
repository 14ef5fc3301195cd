// Spike (issue #26): the encodings measured. `json` mimics src/sandbox/wire.ts as it was before binary records
// (newline-framed JSON node → host, length-prefixed binary outcomes back, one Buffer per outcome
// and a Buffer.concat per frame); `binary` carries the same fields length-prefixed both ways and
// writes a frame's records into one buffer.

/** A run request as the node hands it on: ~150 bytes on the wire. */
export const CALLER = '02' + 'a1b2c3d4e5f60718'.repeat(4) // a compressed public key in hex, 66 chars
export const SCRIPT = '(() => { const n = input?.n ?? 1; return { result: n + 1 } })()'
export const RUN = 1
export const OUTCOME = 1
const ERROR_CODES = ['INVALID_PARAMS', 'TIMEOUT', 'WORKER_CRASHED', 'SCRIPT_ERROR', 'QUOTA_EXCEEDED']

// ---- node → host, today: JSON text ------------------------------------------------------------

/** the former wire.ts encodeRunMessage: the script is the only string that needs escaping. */
export function jsonRunMessage(ctxId, script, caller, flags, timeoutMs) {
  return `[1,${ctxId},${JSON.stringify(script)},"${caller}",${flags},${timeoutMs}]`
}
export function jsonFrame(messages) {
  return `[${messages.join(',')}]\n`
}

/** wire.ts FrameReader. */
export class FrameReader {
  pending = undefined
  push(chunk, onFrame) {
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

// ---- node → host, binary: u32 length of the rest | u8 RUN | u32 ctxId | u8 flags | u32 timeoutMs
//      | u8 caller bytes | caller (latin1) | script (UTF-8) ----------------------------------------

const RUN_HEADER = 4 + 1 + 4 + 1 + 4 + 1

/** Bytes one binary run record takes. */
export function binaryRunBytes(script, caller) {
  return RUN_HEADER + caller.length + Buffer.byteLength(script)
}

/** Write one binary run record at `at` of `buf`; returns the offset after it. */
export function writeBinaryRun(buf, at, ctxId, script, caller, flags, timeoutMs) {
  const start = at
  at += 4
  buf[at++] = RUN
  buf.writeUInt32LE(ctxId, at)
  at += 4
  buf[at++] = flags
  buf.writeUInt32LE(timeoutMs, at)
  at += 4
  buf[at++] = caller.length
  at += buf.latin1Write(caller, at)
  at += buf.utf8Write(script, at)
  buf.writeUInt32LE(at - start - 4, start)
  return at
}

/** Decode the binary run record whose body is [start, end) (after its length prefix). */
export function readBinaryRun(buf, start, end) {
  if (buf[start] !== RUN) throw new Error('unknown message type')
  const ctxId = buf.readUInt32LE(start + 1)
  const flags = buf[start + 5]
  const timeoutMs = buf.readUInt32LE(start + 6)
  const callerBytes = buf[start + 10]
  const callerEnd = start + 11 + callerBytes
  if (callerEnd > end) throw new Error('truncated run')
  return [RUN, ctxId, buf.latin1Slice(start + 11, callerEnd), buf.utf8Slice(callerEnd, end), flags, timeoutMs]
}

// ---- host → node: wire.ts's OUTCOME ------------------------------------------------------------
//   u32 length of the rest | u8 OUTCOME | u32 seq | u16 code | u8 flags | f64 runMs | f64 cpuMs
//   | f64 callsMs | u32 message bytes | message | body          (~100 bytes with the body below: 40 + ~60)

export const OUTCOME_HEADER = 4 + 1 + 4 + 2 + 1 + 8 + 8 + 8 + 4

export function outcomeBody(seq) {
  return `{"output":null,"result":${seq % 1000},"logs":["one log line of the run"]}`
}

/** the former wire.ts encodeOutcome: one Buffer per outcome. */
export function encodeOutcome(seq, outcome, flags) {
  const messageBytes = Buffer.byteLength(outcome.message)
  const bodyBytes = Buffer.byteLength(outcome.body)
  const buf = Buffer.allocUnsafe(OUTCOME_HEADER + messageBytes + bodyBytes)
  writeOutcomeAt(buf, 0, seq, outcome, flags, messageBytes, bodyBytes)
  return buf
}

/** The same outcome written into `buf` at `at` (no allocation); returns the offset after it. */
export function writeOutcomeAt(buf, at, seq, outcome, flags, messageBytes = Buffer.byteLength(outcome.message), bodyBytes = Buffer.byteLength(outcome.body)) {
  buf.writeUInt32LE(OUTCOME_HEADER - 4 + messageBytes + bodyBytes, at)
  at += 4
  buf[at++] = OUTCOME
  buf.writeUInt32LE(seq >>> 0, at)
  at += 4
  buf.writeUInt16LE(outcome.code === null ? 0 : ERROR_CODES.indexOf(outcome.code) + 1, at)
  at += 2
  buf[at++] = flags
  buf.writeDoubleLE(outcome.runMs, at)
  buf.writeDoubleLE(outcome.cpuMs, at + 8)
  buf.writeDoubleLE(outcome.callsMs, at + 16)
  at += 24
  buf.writeUInt32LE(messageBytes, at)
  at += 4
  if (messageBytes > 0) at += buf.utf8Write(outcome.message, at)
  at += buf.utf8Write(outcome.body, at)
  return at
}

/** wire.ts decodeReply for an OUTCOME whose body is [start, end): read as the node reads it, checked. */
export function decodeOutcome(buf, start, end) {
  const type = buf[start]
  if (type !== OUTCOME) throw new Error(`host sent an unknown reply type ${type}`)
  if (end - start < OUTCOME_HEADER - 4) throw new Error('host sent a truncated outcome')
  const seq = buf.readUInt32LE(start + 1)
  const codeIndex = buf.readUInt16LE(start + 5)
  const flags = buf[start + 7]
  const runMs = buf.readDoubleLE(start + 8)
  const cpuMs = buf.readDoubleLE(start + 16)
  const callsMs = buf.readDoubleLE(start + 24)
  const messageBytes = buf.readUInt32LE(start + 32)
  const messageEnd = start + 36 + messageBytes
  if (messageEnd > end) throw new Error('host sent a truncated outcome')
  const code = codeIndex === 0 ? null : ERROR_CODES[codeIndex - 1]
  if (code === undefined) throw new Error(`host sent an unknown error code ${codeIndex}`)
  const message = messageBytes === 0 ? '' : buf.toString('utf8', start + 36, messageEnd)
  return { seq, flags, outcome: { code, message, body: buf.toString('utf8', messageEnd, end), runMs, cpuMs, callsMs } }
}

/** wire.ts ReplyReader: reassembles length-prefixed replies from a byte stream. */
export class ReplyReader {
  chunks = []
  buffered = 0
  needed = 0
  push(chunk, onReply) {
    let buf = chunk
    if (this.chunks.length > 0) {
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
      onReply(decodeOutcome(buf, at + 4, at + 4 + length))
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

/** Length-prefixed records from a byte stream, for the host reading binary runs. */
export class RecordReader {
  pending = undefined
  push(chunk, onRecord) {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    let at = 0
    while (buf.length - at >= 4) {
      const length = buf.readUInt32LE(at)
      if (buf.length - at - 4 < length) break
      onRecord(buf, at + 4, at + 4 + length)
      at += 4 + length
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at))
  }
}

// Spike (issue #26): the host side. This process's main thread stands for a host's script
// thread: it blocks reading runs, "runs" each (no engine: the engine is measured elsewhere),
// records its progress marker, and writes the outcomes back at the end of the frame — what
// src/sandbox/worker.ts does around the engine.
//   node child.mjs json|binary|binary-nomark <markerPath>   runs on fd 3, outcomes on fd 4
//   node child.mjs fifo <markerPath> <inPath> <outPath>     the same over two FIFOs (pipe(2))
//   node child.mjs ring                                     the shared mapping on fd 3
import { constants, openSync, readSync, writeSync } from 'node:fs'
import { FrameReader, RecordReader, encodeOutcome, outcomeBody, readBinaryRun, writeOutcomeAt } from './codec.mjs'
import { HEADER_BYTES, RING_BYTES, Ring, W, loadAddon, mappingBytes } from './ring.mjs'

const [mode, markerPath, inPath, outPath] = process.argv.slice(2)
const waitCell = new Int32Array(new SharedArrayBuffer(4))
let seq = 0

/** What the engine would answer: fixed, ~100 bytes encoded. */
function run(message) {
  if (message[0] !== 1) throw new Error('unexpected message')
  return { code: null, message: '', body: outcomeBody(seq), runMs: 0.012, cpuMs: 0.011, callsMs: 0 }
}

function writeAll(fd, buf, length) {
  let at = 0
  while (at < length) {
    try {
      at += writeSync(fd, buf, at, length - at)
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error
      Atomics.wait(waitCell, 0, 0, 1)
    }
  }
}

function readLoop(fd, push) {
  const chunk = Buffer.allocUnsafe(256 * 1024)
  for (;;) {
    let read
    try {
      read = readSync(fd, chunk, 0, chunk.length, null)
    } catch (error) {
      if (error.code === 'EAGAIN') {
        Atomics.wait(waitCell, 0, 0, 1)
        continue
      }
      if (error.code === 'EOF') return
      throw error
    }
    if (read === 0) return
    push(chunk.subarray(0, read))
  }
}

if (mode === 'ring') {
  const addon = loadAddon()
  const ab = addon.mapFd(3, mappingBytes())
  const words = new Int32Array(ab, 0, HEADER_BYTES / 4)
  const req = new Ring(ab, HEADER_BYTES, W.REQ_TAIL, W.REQ_HEAD)
  const out = new Ring(ab, HEADER_BYTES + RING_BYTES, W.OUT_TAIL, W.OUT_HEAD)
  let input = Buffer.allocUnsafe(64 * 1024)
  let output = Buffer.allocUnsafe(64 * 1024)
  for (;;) {
    const avail = req.available()
    if (avail === 0) {
      const bell = Atomics.load(words, W.HOST_BELL)
      Atomics.store(words, W.HOST_ARMED, 1)
      if (req.available() === 0) addon.futexWait(ab, W.HOST_BELL * 4, bell >>> 0, 1000)
      Atomics.store(words, W.HOST_ARMED, 0)
      continue
    }
    if (input.length < avail) input = Buffer.allocUnsafe(avail * 2)
    req.read(input, avail)
    let at = 0
    let written = 0
    while (at < avail) {
      const length = input.readUInt32LE(at)
      const message = readBinaryRun(input, at + 4, at + 4 + length)
      at += 4 + length
      Atomics.store(words, W.MARKER, seq)
      const outcome = run(message)
      if (output.length - written < 4096) output = Buffer.concat([output.subarray(0, written), Buffer.allocUnsafe(output.length)])
      written = writeOutcomeAt(output, written, seq, outcome, 0)
      seq++
    }
    if (out.room() < written) throw new Error('outcome ring full (the spike does not wait for room)')
    out.write(output, written)
    out.publish()
    if (Atomics.exchange(words, W.NODE_ARMED, 0) === 1) {
      Atomics.add(words, W.NODE_BELL, 1)
      addon.futexWake(ab, W.NODE_BELL * 4)
    }
  }
} else {
  const inFd = mode === 'fifo' ? openSync(inPath, constants.O_RDONLY) : 3
  const outFd = mode === 'fifo' ? openSync(outPath, constants.O_WRONLY) : 4
  const markFd = mode === 'binary-nomark' ? -1 : openSync(markerPath, constants.O_WRONLY | constants.O_NOFOLLOW)
  const markBytes = Buffer.alloc(4)
  const mark = (n) => {
    if (markFd < 0) return
    markBytes.writeInt32LE(n, 0)
    writeSync(markFd, markBytes, 0, 4, 0) // pwrite, as worker.ts's mark()
  }
  if (mode === 'json') {
    // Today: JSON.parse of the frame, one Buffer per outcome, Buffer.concat per frame.
    const reader = new FrameReader()
    readLoop(inFd, (chunk) =>
      reader.push(chunk, (frame) => {
        const messages = JSON.parse(frame)
        const pending = []
        for (const message of messages) {
          mark(seq)
          pending.push(encodeOutcome(seq, run(message), 0))
          seq++
        }
        const buf = pending.length === 1 ? pending[0] : Buffer.concat(pending)
        writeAll(outFd, buf, buf.length)
      }),
    )
  } else {
    // Binary both ways: records decoded in place, outcomes written into one reused buffer.
    const reader = new RecordReader()
    let output = Buffer.allocUnsafe(64 * 1024)
    let written = 0
    readLoop(inFd, (chunk) => {
      written = 0
      reader.push(chunk, (buf, start, end) => {
        const message = readBinaryRun(buf, start, end)
        mark(seq)
        if (output.length - written < 4096) output = Buffer.concat([output.subarray(0, written), Buffer.allocUnsafe(output.length)])
        written = writeOutcomeAt(output, written, seq, run(message), 0)
        seq++
      })
      if (written > 0) writeAll(outFd, output, written)
    })
  }
}

// Spike (issue #26): two single-producer single-consumer byte rings in one shared mapping, with
// futex doorbells. The node writes runs into `req` and reads outcomes from `out`; the host the
// reverse. Records are the binary ones of codec.mjs (u32 length prefix), copied in and out with
// wrap-around. Indices are free-running u32 byte counts; each side keeps its own index privately
// and only publishes it — it never reads its own index back from the shared pages, which the
// other side could have changed.
//
// Header words (each on its own 64-byte line; word index = byte offset / 4):
//   REQ_TAIL (node)  REQ_HEAD (host)  OUT_TAIL (host)  OUT_HEAD (node)
//   HOST_ARMED  HOST_BELL   the host is about to sleep / futex word the node bumps to wake it
//   NODE_ARMED  NODE_BELL   the same for the node's watcher thread
//   MARKER                  the slice the host last started (its progress marker, no syscall)
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export const W = { REQ_TAIL: 0, REQ_HEAD: 16, OUT_TAIL: 32, OUT_HEAD: 48, HOST_ARMED: 64, HOST_BELL: 80, NODE_ARMED: 96, NODE_BELL: 112, MARKER: 128 }
export const HEADER_BYTES = 4096
export const RING_BYTES = 1 << 20

export function mappingBytes() {
  return HEADER_BYTES + 2 * RING_BYTES
}

let addon
/** The addon, or the reason it is not there. */
export function loadAddon() {
  if (addon !== undefined) return addon
  const path = fileURLToPath(new URL('./addon/build/Release/shm_ring.node', import.meta.url))
  addon = createRequire(import.meta.url)(path)
  return addon
}

/** One direction of the mapping. */
export class Ring {
  constructor(ab, dataOffset, tailWord, headWord) {
    this.words = new Int32Array(ab, 0, HEADER_BYTES / 4)
    this.data = Buffer.from(ab, dataOffset, RING_BYTES)
    this.tailWord = tailWord
    this.headWord = headWord
    this.mask = RING_BYTES - 1
    // Private copies of this side's own index.
    this.tail = 0
    this.head = 0
  }

  // ---- producer -------------------------------------------------------------------------------
  /** Room left; the consumer's head is read from shared memory and checked. */
  room() {
    const used = (this.tail - Atomics.load(this.words, this.headWord)) >>> 0
    if (used > RING_BYTES) throw new Error('ring: peer published a head beyond the tail')
    return RING_BYTES - used
  }
  /** Copy `src[0, n)` in at the private tail (not yet visible). */
  write(src, n) {
    const at = this.tail & this.mask
    const first = Math.min(n, RING_BYTES - at)
    src.copy(this.data, at, 0, first)
    if (first < n) src.copy(this.data, 0, first, n)
    this.tail = (this.tail + n) >>> 0
  }
  publish() {
    Atomics.store(this.words, this.tailWord, this.tail | 0)
  }

  // ---- consumer -------------------------------------------------------------------------------
  /** Bytes published and not yet read; the producer's tail is read from shared memory and checked. */
  available() {
    const avail = (Atomics.load(this.words, this.tailWord) - this.head) >>> 0
    if (avail > RING_BYTES) throw new Error('ring: peer published a tail beyond the ring')
    return avail
  }
  /** Copy `n` published bytes out into private memory `dst` (so the peer cannot change them while they are decoded). */
  read(dst, n) {
    const at = this.head & this.mask
    const first = Math.min(n, RING_BYTES - at)
    this.data.copy(dst, 0, at, at + first)
    if (first < n) this.data.copy(dst, first, 0, n - first)
    this.head = (this.head + n) >>> 0
    Atomics.store(this.words, this.headWord, this.head | 0)
  }
}

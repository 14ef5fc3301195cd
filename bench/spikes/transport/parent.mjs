// Spike (issue #26): one measurement. This process stands for the node: it spawns one host
// (child.mjs), keeps one frame of `batch` runs in flight (the next is sent when the previous
// frame's outcomes are all in, as the sandbox pool does), and prints one JSON line: messages/s
// and CPU µs per message (a run request and its outcome) of each side's main thread and whole
// process, from /proc/<pid>/task/<tid>/schedstat over the measured window.
//   node parent.mjs <transport> <batch> <seconds> [--pin]
// transport: json | binary | binary-nomark | fifo | ring
import { spawn, execFileSync } from 'node:child_process'
import { closeSync, constants, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { CALLER, SCRIPT, ReplyReader, binaryRunBytes, decodeOutcome, jsonFrame, jsonRunMessage, writeBinaryRun } from './codec.mjs'
import { HEADER_BYTES, RING_BYTES, Ring, W, loadAddon, mappingBytes } from './ring.mjs'

const [transport, batchText, secondsText] = process.argv.slice(2)
const batch = Number(batchText)
const seconds = Number(secondsText)
// --pin: this process is on core 0 (the caller's taskset) and the host on core 1; --pin-same: the host on core 0 too
const pin = process.argv.includes('--pin') || process.argv.includes('--pin-same')
const hostCore = process.argv.includes('--pin-same') ? '0' : '1'
const WARMUP_MS = 700
const childPath = fileURLToPath(new URL('./child.mjs', import.meta.url))

/** A private directory (mkdtemp: unpredictable name, mode 0700) in memory-backed storage. */
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'circles-transport-spike-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
/** A new private file in it: O_EXCL | O_NOFOLLOW, mode 0600. */
function privateFile(name, flags = constants.O_RDWR) {
  return openSync(join(dir, name), flags | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
}

function cpu(pid) {
  let main = 0
  let all = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ns
    try {
      ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      continue
    }
    all += ns
    if (Number(tid) === pid) main += ns
  }
  return { main, all }
}

const command = pin ? 'taskset' : process.execPath
const prefix = pin ? ['-c', hostCore, process.execPath] : []
let child
let send // (frameOfRuns) => void
let ctx = 0

// ---- the transports, node side --------------------------------------------------------------
if (transport === 'json' || transport === 'binary' || transport === 'binary-nomark' || transport === 'fifo') {
  const markerPath = join(dir, 'host.progress')
  closeSync(privateFile('host.progress'))
  let input
  let output
  if (transport === 'fifo') {
    const inPath = join(dir, 'runs.fifo')
    const outPath = join(dir, 'outcomes.fifo')
    execFileSync('mkfifo', ['-m', '600', inPath, outPath])
    // O_RDWR: opening a FIFO does not wait for the other end, and the host's blocking opens
    // find this end there. libuv makes these descriptors non-blocking for the node.
    input = new net.Socket({ fd: openSync(inPath, constants.O_RDWR | constants.O_NONBLOCK), readable: false, writable: true })
    output = new net.Socket({ fd: openSync(outPath, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false })
    child = spawn(command, [...prefix, childPath, 'fifo', markerPath, inPath, outPath], { stdio: ['ignore', 'inherit', 'inherit'] })
  } else {
    // As src/sandbox/host-link.ts: extra stdio entries 'pipe' (libuv makes them AF_UNIX socketpairs).
    child = spawn(command, [...prefix, childPath, transport, markerPath], { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'] })
    input = child.stdio[3]
    output = child.stdio[4]
  }
  const reader = new ReplyReader()
  output.on('data', (chunk) => reader.push(chunk, onOutcome))
  if (transport === 'json') {
    send = (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push(jsonRunMessage(ctx++ & 63, SCRIPT, CALLER, 1, 5000))
      input.write(jsonFrame(messages))
    }
  } else {
    const recordBytes = binaryRunBytes(SCRIPT, CALLER)
    send = (n) => {
      const buf = Buffer.allocUnsafe(recordBytes * n)
      let at = 0
      for (let i = 0; i < n; i++) at = writeBinaryRun(buf, at, ctx++ & 63, SCRIPT, CALLER, 1, 5000)
      input.write(buf)
    }
  }
} else if (transport === 'ring') {
  const addon = loadAddon()
  // The mapping: a new 0600 file in the private directory, handed to the host as an inherited
  // descriptor and unlinked at once — the host never opens a path, and no name is left behind.
  const fd = privateFile('ring')
  ftruncateSync(fd, mappingBytes())
  const ab = addon.mapFd(fd, mappingBytes())
  child = spawn(command, [...prefix, childPath, 'ring'], { stdio: ['ignore', 'inherit', 'inherit', fd] })
  closeSync(fd)
  rmSync(join(dir, 'ring'))
  const words = new Int32Array(ab, 0, HEADER_BYTES / 4)
  const req = new Ring(ab, HEADER_BYTES, W.REQ_TAIL, W.REQ_HEAD)
  const out = new Ring(ab, HEADER_BYTES + RING_BYTES, W.OUT_TAIL, W.OUT_HEAD)
  const recordBytes = binaryRunBytes(SCRIPT, CALLER)
  let scratch = Buffer.allocUnsafe(64 * 1024)
  let incoming = Buffer.allocUnsafe(64 * 1024)
  send = (n) => {
    const bytes = recordBytes * n
    if (scratch.length < bytes) scratch = Buffer.allocUnsafe(bytes * 2)
    let at = 0
    for (let i = 0; i < n; i++) at = writeBinaryRun(scratch, at, ctx++ & 63, SCRIPT, CALLER, 1, 5000)
    if (req.room() < at) throw new Error('run ring full (the spike does not wait for room)')
    req.write(scratch, at)
    req.publish()
    if (Atomics.exchange(words, W.HOST_ARMED, 0) === 1) {
      Atomics.add(words, W.HOST_BELL, 1)
      addon.futexWake(ab, W.HOST_BELL * 4)
    }
  }
  /** Everything the host published, copied out and checked (the host is not trusted). */
  const drain = () => {
    const avail = out.available()
    if (avail === 0) return
    if (incoming.length < avail) incoming = Buffer.allocUnsafe(avail * 2)
    out.read(incoming, avail)
    let at = 0
    while (at < avail) {
      if (avail - at < 4) throw new Error('host published a partial record')
      const length = incoming.readUInt32LE(at)
      if (length > avail - at - 4) throw new Error('host published a partial record')
      onOutcome(decodeOutcome(incoming, at + 4, at + 4 + length))
      at += 4 + length
    }
  }
  /** Woken by the addon's watcher thread (uv_async): drain, then arm and look once more. */
  const onWake = () => {
    for (;;) {
      drain()
      if (finished) return
      Atomics.store(words, W.NODE_ARMED, 1)
      if (out.available() === 0) return
      Atomics.store(words, W.NODE_ARMED, 0)
    }
  }
  const watch = addon.watch(ab, W.NODE_BELL * 4, onWake)
  afterSend = onWake
  stopTransport = () => addon.unwatch(watch)
} else {
  throw new Error(`unknown transport ${transport}`)
}
var afterSend
var stopTransport

// ---- the loop: one frame in flight ----------------------------------------------------------
let inFrame = 0
let finished = false
let measuring = false
let counted = 0
let start
let startCpu
const t0 = performance.now()

function onOutcome(reply) {
  if (reply.outcome.body.length === 0) throw new Error('empty outcome')
  counted++
  if (--inFrame > 0) return
  const now = performance.now()
  if (!measuring && now - t0 >= WARMUP_MS) {
    measuring = true
    counted = 0
    start = now
    startCpu = { node: cpu(process.pid), host: cpu(child.pid) }
  } else if (measuring && now - start >= seconds * 1000) {
    return finish(now)
  }
  inFrame = batch
  send(batch)
}

function finish(now) {
  finished = true
  const node = cpu(process.pid)
  const host = cpu(child.pid)
  const us = (a, b) => Math.round(((a - b) / 1000 / counted) * 1000) / 1000
  const result = {
    transport,
    batch,
    pinned: pin ? (hostCore === '0' ? 'same' : 'split') : 'no',
    messages: counted,
    seconds: (now - start) / 1000,
    messagesPerSecond: Math.round(counted / ((now - start) / 1000)),
    node: { main: us(node.main, startCpu.node.main), process: us(node.all, startCpu.node.all) },
    host: { main: us(host.main, startCpu.host.main), process: us(host.all, startCpu.host.all) },
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  child.kill('SIGKILL')
  stopTransport?.()
  setImmediate(() => process.exit(0))
}

child.on('exit', (code, signal) => {
  if (!finished) {
    process.stderr.write(`host exited early: ${code ?? signal}\n`)
    process.exit(1)
  }
})

// Give the host a moment to start, then the first frame.
setTimeout(() => {
  inFrame = batch
  send(batch)
  afterSend?.()
}, 300)

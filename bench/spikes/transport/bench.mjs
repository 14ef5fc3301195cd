// Spike (issue #26): the node ↔ host transport micro-bench. Runs parent.mjs (the node's side,
// which spawns child.mjs, the host's side) for every transport × batch size × pinning, `reps`
// times round-robin (so that a noisy minute on the shared machine spreads over all rows), and
// reports medians. Pinning: `no`; `split` — the node on core 0, the host on core 1 (taskset);
// `same` — both on core 0, as `npm run bench -- --pin` places a node and its host. It reports CPU µs per message of each side's main thread (the node's event loop, the
// host's script thread) and whole process, and messages/s.
//   node bench/spikes/transport/bench.mjs [--seconds 2] [--reps 3] [--quick] [--out file.json]
// The ring row needs the spike's addon (not part of the runtime; see docs/benchmarks.md):
//   npx node-gyp rebuild --nodedir=/usr -C bench/spikes/transport/addon
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i < 0 ? fallback : args[i + 1]
}
const quick = args.includes('--quick')
const seconds = Number(option('--seconds', quick ? 0.5 : 2))
const reps = Number(option('--reps', quick ? 1 : 3))
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
const out = option('--out', join(root, 'bench', 'results', `transport-spike-${stamp}.json`))

const TRANSPORTS = [
  ['json', 'a. today: socketpair, JSON frames → binary outcomes ←, marker pwrite per run'],
  ['binary', 'b. the same socketpair, binary both ways, marker pwrite per run'],
  ['binary-nomark', 'b′. the same without the marker pwrite'],
  ['fifo', 'c. pipe(2) (two FIFOs), binary both ways, marker pwrite per run'],
  ['ring', 'd. shared-memory ring (addon: mmap + futex + uv_async), binary, marker in the ring'],
]
const addonBuilt = existsSync(join(here, 'addon', 'build', 'Release', 'shm_ring.node'))
const transports = TRANSPORTS.filter(([name]) => name !== 'ring' || addonBuilt)
if (!addonBuilt) console.log('ring: skipped, the addon is not built (npx node-gyp rebuild --nodedir=/usr -C bench/spikes/transport/addon)')
let canPin = true
try {
  execFileSync('taskset', ['-c', '0', 'true'])
} catch {
  canPin = false
  console.log('pinned rows: skipped, taskset is not available')
}

const configs = []
for (const pinned of canPin ? ['no', 'split', 'same'] : ['no']) for (const [transport] of transports) for (const batch of [1, 25]) configs.push({ transport, batch, pinned })

const runs = []
const load = [loadavg()[0]]
for (let rep = 0; rep < reps; rep++) {
  for (const { transport, batch, pinned } of configs) {
    const parent = join(here, 'parent.mjs')
    const argv = [parent, transport, String(batch), String(seconds), ...(pinned === 'split' ? ['--pin'] : pinned === 'same' ? ['--pin-same'] : [])]
    const text = pinned !== 'no' ? execFileSync('taskset', ['-c', '0', process.execPath, ...argv], { encoding: 'utf8', timeout: 60_000 }) : execFileSync(process.execPath, argv, { encoding: 'utf8', timeout: 60_000 })
    const result = { rep, ...JSON.parse(text.trim().split('\n').pop()) }
    runs.push(result)
    console.log(`rep ${rep + 1}/${reps} ${pinned.padEnd(5)} ${transport.padEnd(13)} batch ${String(batch).padStart(2)}: ${String(result.messagesPerSecond).padStart(7)} msg/s, node main ${result.node.main.toFixed(2)} µs, host main ${result.host.main.toFixed(2)} µs`)
  }
  load.push(loadavg()[0])
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const medians = configs.map(({ transport, batch, pinned }) => {
  const mine = runs.filter((r) => r.transport === transport && r.batch === batch && r.pinned === pinned)
  return {
    transport,
    label: TRANSPORTS.find(([name]) => name === transport)[1],
    batch,
    pinned,
    messagesPerSecond: median(mine.map((r) => r.messagesPerSecond)),
    nodeMainUs: median(mine.map((r) => r.node.main)),
    nodeProcessUs: median(mine.map((r) => r.node.process)),
    hostMainUs: median(mine.map((r) => r.host.main)),
    hostProcessUs: median(mine.map((r) => r.host.process)),
  }
})

console.log('\n| transport | pinning | batch | msg/s | node main µs/msg | node process µs/msg | host main µs/msg | host process µs/msg |')
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const m of medians) console.log(`| ${m.transport} | ${m.pinned} | ${m.batch} | ${m.messagesPerSecond.toLocaleString('en-US')} | ${m.nodeMainUs.toFixed(2)} | ${m.nodeProcessUs.toFixed(2)} | ${m.hostMainUs.toFixed(2)} | ${m.hostProcessUs.toFixed(2)} |`)

const report = {
  bench: 'transport-spike',
  issue: 26,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), node: process.version, loadavg1: load },
  parameters: { seconds, reps, warmupMs: 700, requestBytes: { json: 'see codec.mjs', binaryRecord: 'see codec.mjs' }, unit: 'CPU µs per message (one run request and its outcome), /proc/<pid>/task/<tid>/schedstat over the window; main = the thread whose tid is the pid' },
  medians,
  runs,
}
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
console.log(`\nwrote ${out}`)

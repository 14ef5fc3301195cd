/**
 * `npm run soak -- --minutes N`: a launched node under a mixed load for N minutes (default 30),
 * one line of figures a minute, then a verdict: node RSS may grow by less than 10 % over the
 * second half (medians of the last samples against those ending at the middle). Writes
 * bench/results/soak-<time>.json. Exit code 0 on a pass, 1 otherwise.
 *
 *   --minutes N            length of the run (default 30)
 *   --sample-seconds N     one line this often (default 60)
 *   --bomb-every-seconds N one host-killing script this often (default 30)
 *   --sandbox-processes N  sandbox hosts of the node (default: the node's own default)
 *   --out FILE             write the JSON there instead of bench/results/soak-<time>.json
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MAX_RSS_GROWTH_PERCENT, repositoryRoot, runSoak, type SoakSample } from './soak/run-soak.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    'sample-seconds': { type: 'string' },
    'bomb-every-seconds': { type: 'string' },
    'sandbox-processes': { type: 'string' },
    out: { type: 'string' },
  },
})

function positive(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!(n > 0)) {
    process.stderr.write(`soak: ${flag} must be a positive number\n`)
    process.exit(64)
  }
  return n
}

const minutes = positive(values.minutes, 30, '--minutes')
const sampleSeconds = positive(values['sample-seconds'], 60, '--sample-seconds')
const bombEverySeconds = positive(values['bomb-every-seconds'], 30, '--bomb-every-seconds')
const sandboxProcesses = values['sandbox-processes'] === undefined ? undefined : positive(values['sandbox-processes'], 1, '--sandbox-processes')

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`.padStart(9)
const codes = (counts: Readonly<Record<string, number>>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(' · ')

process.stdout.write(
  `soak: ${minutes} min, a line every ${sampleSeconds} s, a host-killing script every ${bombEverySeconds} s (${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB)\n` +
    `${'time'.padStart(6)} ${'node RSS'.padStart(9)} ${'hosts RSS'.padStart(9)} ${'heap'.padStart(9)} ${'lag p99'.padStart(8)} ${'handles'.padStart(7)} ${'conns'.padStart(5)} ${'restarts'.padStart(8)}  answers (plays by code | authentications)\n`,
)
const line = (s: SoakSample) =>
  `${`${(s.elapsedMs / 60_000).toFixed(1)}m`.padStart(6)} ${mb(s.nodeRssBytes)} ${mb(s.hostsRssBytes)} ${mb(s.heapUsedBytes)} ${`${s.eventLoopLagP99Ms.toFixed(1)} ms`.padStart(8)} ${String(s.openHandles).padStart(7)} ${String(s.connectionsOpen).padStart(5)} ${String(s.hostRestarts).padStart(8)}  ${codes(s.plays)} | ${codes(s.authentications)}\n`

const result = await runSoak({
  durationMs: minutes * 60_000,
  sampleMs: sampleSeconds * 1000,
  mix: { bombEveryMs: bombEverySeconds * 1000 },
  ...(sandboxProcesses === undefined ? {} : { sandboxProcesses }),
  onSample: (s) => process.stdout.write(line(s)),
})

process.stdout.write(`\nclient side, answers by class: ${JSON.stringify(result.answers)}\n`)
if (Object.keys(result.unexpected).length > 0) process.stdout.write(`unexpected answers: ${JSON.stringify(result.unexpected)}\n`)
process.stdout.write(`node log lines by level: ${JSON.stringify(result.log.byLevel)}\n`)
for (const error of result.log.errors) process.stdout.write(`  ${error}\n`)
process.stdout.write(`drained and exited with code ${result.exitCode}\n`)
process.stdout.write(
  `verdict: ${result.pass ? 'PASS' : 'FAIL'} — node RSS grew ${result.rssGrowthSecondHalfPercent} % over the second half (limit ${MAX_RSS_GROWTH_PERCENT} %)\n`,
)

const results = join(repositoryRoot(), 'bench', 'results')
if (values.out === undefined) mkdirSync(results, { recursive: true })
const file = values.out ?? join(results, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
writeFileSync(
  file,
  JSON.stringify({ machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, memory_bytes: totalmem(), node: process.version }, minutes, sampleSeconds, bombEverySeconds, ...result }, null, 2),
)
process.stdout.write(`results: ${file}\n`)
process.exit(result.pass ? 0 : 1)

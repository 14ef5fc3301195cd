/**
 * Long fuzzing runs against a launched node (the built CLI), beyond what CI runs:
 *
 *   npm run fuzz -- --frames 1000000            # protocol frames
 *   npm run fuzz -- --scripts 5000              # scripts mutated from the hostile corpus
 *   npm run fuzz -- --frames 100000 --seed 42   # replay a run (FUZZ_SEED works too)
 *
 * Prints progress and a report; exits 1 on any problem, printing the seed.
 */
import { parseArgs } from 'node:util'
import { fuzzFrames } from './frame-fuzz.js'
import { hostileCorpus } from './hostile-corpus.js'
import { launchFuzzNode } from './launch.js'
import { seedFromEnv } from './random.js'
import { fuzzScripts } from './script-fuzz.js'

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { frames: { type: 'string' }, scripts: { type: 'string' }, seed: { type: 'string' } },
  })
  const count = (value: string | undefined, name: string): number => {
    if (value === undefined) return 0
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`)
    return n
  }
  let frames = count(values.frames, 'frames')
  const scripts = count(values.scripts, 'scripts')
  if (frames === 0 && scripts === 0) frames = 100_000
  const seed = values.seed === undefined ? seedFromEnv() : Number(values.seed)
  console.log(`seed ${seed}`)
  const node = await launchFuzzNode([
    { name: 'fuzz', port: 0, policy: { run: 'anonymous', write: 'authenticated' }, limits: { timeout_ms: 20, cpu_ms: 20 } },
    { name: 'fuzz2', port: 0, policy: { run: 'anonymous', write: 'authenticated' }, limits: { timeout_ms: 200, cpu_ms: 200 } },
    { name: 'bystander', port: 0, policy: { run: 'anonymous' } },
  ])
  let failed = false
  try {
    if (frames > 0) {
      const started = performance.now()
      const report = await fuzzFrames({ url: node.urls.get('fuzz')!, frames, seed, onProgress: (n) => n % 10_000 === 0 && console.log(`frames ${n}`) })
      console.log(JSON.stringify({ ...report, seconds: Math.round((performance.now() - started) / 1000) }, null, 2))
      failed ||= report.problems.length > 0
    }
    if (scripts > 0) {
      const report = await fuzzScripts({
        urls: [node.urls.get('fuzz')!, node.urls.get('fuzz2')!],
        bystanderUrl: node.urls.get('bystander')!,
        corpus: hostileCorpus(),
        scripts,
        seed,
        onProgress: (n) => n % 100 === 0 && console.log(`scripts ${n}`),
      })
      console.log(JSON.stringify(report, null, 2))
      failed ||= report.problems.length > 0
    }
    if (!node.alive()) {
      console.log('the node died')
      failed = true
    }
    if (node.errors().length > 0) {
      console.log(`the node logged errors:\n${node.errors().join('\n')}`)
      failed = true
    }
  } finally {
    await node.stop()
  }
  if (failed) console.log(`FAILED — replay with: npm run fuzz -- --seed ${seed} ${frames > 0 ? `--frames ${frames}` : ''} ${scripts > 0 ? `--scripts ${scripts}` : ''}`)
  return failed ? 1 : 0
}

process.exitCode = await main()

/**
 * Sandbox fuzzing: scripts mutated from the hostile corpus (combined, spliced, perturbed) run in
 * circles of a launched node; every answer must be well-formed, the node must live, and a
 * bystander circle must find the realm pristine after every few scripts and at the end. The seed
 * is printed; FUZZ_SEED replays a run. Longer runs: `npm run fuzz -- --scripts 5000`.
 */
import t from 'tap'
import { hostileCorpus } from '../../fuzz/hostile-corpus.js'
import { seedFromEnv } from '../../fuzz/random.js'
import { fuzzScripts } from '../../fuzz/script-fuzz.js'
import { launchNode } from '../helpers/launched.js'
import { openSocket } from '../helpers/raw-socket.js'

const SCRIPTS = Number(process.env['FUZZ_SCRIPTS'] ?? 300)
/** CI bound: the run stops after this long even if fewer scripts ran (a slow or busy machine). */
const DURATION_MS = Number(process.env['FUZZ_DURATION_MS'] ?? 20_000)

t.test('scripts mutated from the hostile corpus', { timeout: 180_000 }, async (t) => {
  const seed = seedFromEnv()
  t.comment(`seed ${seed} (replay with FUZZ_SEED=${seed})`)
  const open = { policy: { run: 'anonymous', write: 'authenticated' }, limits: { timeout_ms: 200, cpu_ms: 200 } }
  const node = await launchNode(t, {
    circles: [
      { name: 'fuzz1', port: 0, ...open },
      { name: 'fuzz2', port: 0, ...open },
      { name: 'bystander', port: 0, policy: { run: 'anonymous' } },
    ],
  })
  const report = await fuzzScripts({
    urls: [node.circles['fuzz1']!.url, node.circles['fuzz2']!.url],
    bystanderUrl: node.circles['bystander']!.url,
    corpus: hostileCorpus(),
    scripts: SCRIPTS,
    durationMs: DURATION_MS,
    seed,
  })
  t.comment(`${report.scripts} scripts; outcomes ${JSON.stringify(report.outcomes)}`)
  // All of them, or as many as the time bound let run: which one depends on the machine.
  t.ok(report.scripts === SCRIPTS || report.elapsedMs >= DURATION_MS, `${report.scripts} scripts ran in ${(report.elapsedMs / 1000).toFixed(0)} s`)
  t.ok(report.scripts > 0)
  t.same(report.problems, [], `every answer well-formed, the realm pristine after them (seed ${seed})`)
  t.ok(node.alive(), 'the node lives')
  const socket = await openSocket(node.circles['bystander']!.url)
  t.match(await socket.call('play', { script: '"next"' }, 1, 30_000), { result: { output: 'next' } }, 'the next ordinary run is served')
  socket.close()
  t.equal(node.lines.filter((l) => /last-resort/.test(l.msg)).length, 0, 'nothing reached the last-resort handler')
})

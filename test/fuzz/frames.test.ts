/**
 * Protocol fuzzing at scale: ≥ 10,000 frames, mutated from valid ones, over real sockets to the
 * built node running as a process of its own (the answer path is fuzzed too, not only the parser).
 * The seed is printed; FUZZ_SEED replays a run. Longer runs: `npm run fuzz -- --frames 1000000`.
 */
import t from 'tap'
import { fuzzFrames } from '../../fuzz/frame-fuzz.js'
import { seedFromEnv } from '../../fuzz/random.js'
import { launchNode } from '../helpers/launched.js'
import { openSocket } from '../helpers/raw-socket.js'

const FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 10_000)

t.test(`${FRAMES} fuzzed frames to a launched node`, { timeout: 180_000 }, async (t) => {
  const seed = seedFromEnv()
  t.comment(`seed ${seed} (replay with FUZZ_SEED=${seed})`)
  const node = await launchNode(t, {
    // Short script limits: mutated plays of endless loops cost little.
    circles: [{ name: 'fuzz', port: 0, policy: { run: 'anonymous', write: 'authenticated' }, limits: { timeout_ms: 20, cpu_ms: 20 } }],
  })
  const url = node.circles['fuzz']!.url
  const before = node.memory()
  const report = await fuzzFrames({ url, frames: FRAMES, seed })
  t.comment(`messages ${report.messages}; closes ${JSON.stringify(report.closes)}; outcomes ${JSON.stringify(report.outcomes)}`)
  t.equal(report.frames, FRAMES, `${FRAMES} frames sent`)
  t.same(report.problems, [], `every answer well-formed (seed ${seed})`)
  t.ok(node.alive(), `the node lives (seed ${seed})`)
  t.ok(report.outcomes['ok']! > 0 && report.outcomes['PARSE_ERROR']! > 0 && report.outcomes['INVALID_REQUEST']! > 0, 'the frames reached the parser, the gateway and the sandbox')
  const socket = await openSocket(url)
  t.match(await socket.call('play', { script: '"still serving"' }, 1, 30_000), { result: { output: 'still serving' } }, 'an ordinary play is served afterwards')
  socket.close()
  const after = node.memory()
  t.comment(`node RSS ${(before.rss / 2 ** 20).toFixed(0)} MB before, ${(after.rss / 2 ** 20).toFixed(0)} MB after, peak ${(after.peak / 2 ** 20).toFixed(0)} MB`)
  t.equal(node.lines.filter((l) => /last-resort/.test(l.msg)).length, 0, 'nothing reached the last-resort handler')
})

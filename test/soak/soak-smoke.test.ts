import t from 'tap'
import { rssGrowthSecondHalf, runSoak } from '../../bench/soak/run-soak.js'

/**
 * The soak (`npm run soak`), bounded: half a minute of the same mixed load against a launched
 * node (`npm run build` first). Too short to judge memory growth — the full run does that — but
 * long enough to see every part of the mix answered as it should be, figures sampled, no error
 * logged, and the node drained cleanly at the end.
 */
t.test('soak smoke: 30 s of mixed load', async (t) => {
  const result = await runSoak({ durationMs: 30_000, sampleMs: 5_000, sandboxProcesses: 1, mix: { bombEveryMs: 12_000 } })
  t.equal(result.samples.length, 6, 'a sample every 5 s')
  for (const s of result.samples) {
    t.ok(s.nodeRssBytes > 0 && s.hostsRssBytes > 0 && s.heapUsedBytes > 0, `${s.elapsedMs} ms: RSS of node and host, heap`)
    t.ok(Number.isFinite(s.eventLoopLagP99Ms) && s.openHandles > 0, `${s.elapsedMs} ms: event-loop lag, handles`)
    t.equal(s.escalations, 0, 'no supervisor gave up')
  }
  const a = result.answers
  t.ok((a['good']?.['ok'] ?? 0) > 0, 'good clients served')
  t.ok((a['reconnect']?.['ok'] ?? 0) > 0, 'reconnecting clients served')
  t.ok((a['writer']?.['ok'] ?? 0) > 0 && (a['writer']?.['QUOTA_EXCEEDED'] ?? 0) > 0, 'writers served and held to their quota')
  t.ok((a['flood']?.['INVALID_CREDENTIALS'] ?? 0) > 0, 'bad signatures refused')
  t.ok((a['hostile']?.['SCRIPT_TIMEOUT'] ?? 0) > 0, 'hostile scripts stopped')
  t.ok((a['bomb']?.['WORKER_CRASHED'] ?? 0) >= 1, 'a host-killing script was answered WORKER_CRASHED')
  t.ok(result.samples.at(-1)!.hostRestarts >= 1, 'and its host restarted')
  t.same(result.unexpected, {}, 'no class got an answer it should not')
  t.same(result.log.errors, [], 'nothing logged at error or fatal')
  t.equal(result.exitCode, 0, 'drained and exited 0')
})

t.test('the verdict: RSS growth over the second half, by medians', async (t) => {
  const rss = (...mb: number[]) => mb.map((m) => ({ nodeRssBytes: m * 1_048_576 }))
  t.equal(rssGrowthSecondHalf(rss(90, 100, 100, 100, 100, 110, 110, 110)), 10, 'the last two against the two ending at the middle')
  t.equal(rssGrowthSecondHalf(rss(100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 160, 100, 100, 100)), 0, 'one sample caught mid-GC does not decide')
  t.equal(rssGrowthSecondHalf(rss(100, 120)), 20, 'two samples: the second against the first')
  t.equal(rssGrowthSecondHalf(rss(100)), 0)
})

import t, { type Test } from 'tap'
import { ERROR_REGISTRY } from '../../src/errors/index.js'
import { encodePlayAnswer, failedRun, playResultOf, type PlayResult, type RunOutcome } from '../../src/protocol/index.js'

/** Every member of a PlayResult with the type docs/protocol.md documents; nothing else. */
function checkPlayResult(t: Test, value: Record<string, unknown>): asserts value is PlayResult & Record<string, unknown> {
  const allowed = new Set(['output', 'result', 'logs', 'logs_truncated', 'task_id', 'timings'])
  t.same(Object.keys(value).filter((k) => !allowed.has(k)), [], 'no undocumented member')
  t.type(value['output'], 'string')
  t.ok(Array.isArray(value['logs']) && (value['logs'] as unknown[]).every((l) => typeof l === 'string'), 'logs: string[]')
  t.type(value['task_id'], 'string')
  t.match(value['timings'], { queued_ms: Number, run_ms: Number, cpu_ms: Number })
  t.same(Object.keys(value['timings'] as object).sort(), ['calls_ms', 'cpu_ms', 'queued_ms', 'run_ms'], 'one timings shape')
  if ('logs_truncated' in value) t.equal(value['logs_truncated'], true)
}

const receipt = { taskId: 'task-1', queuedMs: 0.1234567 }

t.test('encodePlayAnswer(id, outcome, receipt): success', async (t) => {
  const cases: [string, RunOutcome, Partial<PlayResult>][] = [
    ['a string value: output only', { code: null, message: '', body: '"output":"Alice","logs":["hi"]', runMs: 1, cpuMs: 0.5, callsMs: 0 }, { output: 'Alice', logs: ['hi'] }],
    ['an object: output and result', { code: null, message: '', body: '"output":"{\\"a\\":1}","result":{"a":1},"logs":[]', runMs: 1, cpuMs: 0.5, callsMs: 0 }, { output: '{"a":1}', result: { a: 1 } }],
    ['undefined', { code: null, message: '', body: '"output":"","result":null,"logs":[]', runMs: 1, cpuMs: 0.5, callsMs: 0 }, { output: '', result: null }],
    ['cut logs', { code: null, message: '', body: '"output":"x","logs":["a"],"logs_truncated":true', runMs: 1, cpuMs: 0.5, callsMs: 0 }, { logs: ['a'], logs_truncated: true }],
  ]
  for (const [label, outcome, expected] of cases) {
    for (const id of [7, 'req-1', null] as const) {
      const answer = JSON.parse(encodePlayAnswer(id, outcome, receipt)) as { jsonrpc: string; id: unknown; result: Record<string, unknown> }
      t.equal(answer.jsonrpc, '2.0')
      t.equal(answer.id, id, `${label}: the id is echoed exactly`)
      checkPlayResult(t, answer.result)
      t.match(answer.result, { ...expected, task_id: 'task-1', timings: { queued_ms: 0.123, run_ms: 1, cpu_ms: 0.5, calls_ms: 0 } }, label)
      t.equal('result' in answer.result, 'result' in expected, `${label}: result ${'result' in expected ? 'present' : 'absent'}`)
    }
  }
})

t.test('encodePlayAnswer(id, outcome, receipt): error', async (t) => {
  const outcome: RunOutcome = { code: 'SCRIPT_ERROR', message: 'Error: "quoted" \u2028 kaboom', body: '"logs":["before"],"logs_truncated":true', runMs: 2, cpuMs: 1, callsMs: 1.5 }
  const answer = JSON.parse(encodePlayAnswer('x', outcome, receipt)) as { id: unknown; error: { code: number; message: string; data: Record<string, unknown> } }
  t.equal(answer.id, 'x')
  t.equal(answer.error.code, ERROR_REGISTRY.SCRIPT_ERROR.rpc)
  t.equal(answer.error.message, 'Error: "quoted" \u2028 kaboom', 'the message survives any character')
  t.same(answer.error.data, {
    code: 'SCRIPT_ERROR',
    logs: ['before'],
    logs_truncated: true,
    task_id: 'task-1',
    timings: { queued_ms: 0.123, run_ms: 2, cpu_ms: 1, calls_ms: 1.5 },
  }, 'errors carry the same task_id and timings shape as successes, in data')
  const crashed = JSON.parse(encodePlayAnswer(1, failedRun('WORKER_CRASHED'), receipt)) as { error: { code: number; data: { code: string; logs: unknown[] } } }
  t.match(crashed.error, { code: -32015, data: { code: 'WORKER_CRASHED', logs: [] } })
})

t.test('playResultOf(outcome, receipt) decodes the same text', async (t) => {
  const ok = playResultOf({ code: null, message: '', body: '"output":"2","result":2,"logs":[]', runMs: 0.5, cpuMs: 0.25, callsMs: 0.125 }, receipt)
  t.same(ok, { output: '2', result: 2, logs: [], task_id: 'task-1', timings: { queued_ms: 0.123, run_ms: 0.5, cpu_ms: 0.25, calls_ms: 0.125 } })
  t.throws(() => playResultOf({ code: 'FORBIDDEN', message: 'no', body: '"logs":[]', runMs: 0, cpuMs: 0, callsMs: 0 }, receipt), {
    code: 'FORBIDDEN',
    message: 'no',
    details: { logs: [], task_id: 'task-1' },
  })
})

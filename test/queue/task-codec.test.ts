import t from 'tap'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '../../src/identity/index.js'
import {
  decodeAnswer,
  decodeHandoff,
  decodeReplyEntry,
  encodeAnswer,
  encodeHandoff,
  encodeReplyEntry,
  parseOwnerToken,
  readTaskRow,
  signTask,
  type QueuedTask,
} from '../../src/queue/index.js'
import { isValidPrefix, QueueKeys } from '../../src/queue/index.js'

const SECRET = 'a-cluster-secret-of-some-length'
const context = generateKeyPair().publicKey
const caller = generateKeyPair().publicKey

function task(over: Partial<QueuedTask> = {}): QueuedTask {
  return { taskId: randomUUID(), context, caller, script: '1 + 1', timeoutMs: 500, replyTo: '0123456789abcdef', deadline: Date.now() + 10_000, origin: '127.0.0.1', ...over }
}

/** The row circlesTake returns for a task as the gateway wrote it. */
function row(q: QueuedTask, mac = signTask(SECRET, q), over: Record<number, unknown> = {}): unknown[] {
  const r: unknown[] = [q.taskId, 'pending', q.script, q.caller, q.timeoutMs === undefined ? '' : String(q.timeoutMs), q.replyTo, String(q.deadline), mac, null, q.origin]
  for (const [i, v] of Object.entries(over)) r[Number(i)] = v
  return r
}

t.test('readTaskRow', async (t) => {
  const q = task()
  t.same(readTaskRow(SECRET, context, row(q)), { type: 'run', task: q }, 'a signed task reads back as written')
  const anonymous = task({ caller: '', timeoutMs: undefined, origin: '' })
  t.same(readTaskRow(SECRET, context, row(anonymous)), { type: 'run', task: anonymous })
  t.same(readTaskRow(SECRET, context, [q.taskId, null, null, null, null, null, null, null, null, null]), { type: 'gone', taskId: q.taskId }, 'an expired record')
  t.match(readTaskRow(SECRET, context, row(q, 'x', { 1: 'completed', 8: 'mac.{}' })), { type: 'done', status: 'completed', answer: 'mac.{}' }, 'a completion record is answered as it is')

  const refused: [string, unknown][] = [
    ['a bad MAC', row(q, 'AAAA')],
    ['another secret', row(q, signTask('another-secret-entirely', q))],
    ['the MAC of another context', row(q, signTask(SECRET, { ...q, context: generateKeyPair().publicKey }))],
    ['a changed caller', row(q, undefined, { 3: generateKeyPair().publicKey })],
    ['a changed script', row(q, undefined, { 2: 'save_data("x", 1)' })],
    ['a later deadline', row(q, undefined, { 6: String(q.deadline + 1) })],
    ['a task id that is not a UUID', row(q, undefined, { 0: 'x' })],
    ['a row of the wrong shape', [q.taskId]],
    ['not a row', 'text'],
    ['an unknown status', row(q, undefined, { 1: 'weird' })],
    ['a deadline that is not a number', row(q, undefined, { 6: 'soon' })],
    ['a reply_to that is not a node id', row(q, undefined, { 5: '../x' })],
    ['a caller that is not a key', row(q, undefined, { 3: 'alice' })],
    ['a bad timeout', row(q, undefined, { 4: '-1' })],
    ['a completion without its answer', row(q, undefined, { 1: 'completed', 8: null })],
  ]
  for (const [what, r] of refused) t.throws(() => readTaskRow(SECRET, context, r), { code: 'QUEUE_MESSAGE_INVALID' }, what)
})

t.test('hand-offs and lease tokens', async (t) => {
  const q = task()
  const { context: c, row: r } = decodeHandoff(encodeHandoff(q, signTask(SECRET, q)))
  t.equal(c, context)
  t.same(readTaskRow(SECRET, c, r), { type: 'run', task: q }, 'a handed-off task reads back as taken')
  t.throws(() => readTaskRow(SECRET, c, decodeHandoff(encodeHandoff(q, 'AAAA')).row), { code: 'QUEUE_MESSAGE_INVALID' }, 'and is checked the same way')
  for (const bad of ['{', '{"c":"x","r":[]}', '[]', 'null']) t.throws(() => decodeHandoff(bad), { code: 'QUEUE_MESSAGE_INVALID' }, bad)
  t.same(parseOwnerToken('0123456789abcdef.12'), { nodeId: '0123456789abcdef', epoch: 12 })
  for (const bad of ['0123456789abcdef', '0123456789abcdef.', 'zz.1', null, 3]) t.equal(parseOwnerToken(bad), undefined, String(bad))
})

t.test('answers and reply entries', async (t) => {
  const taskId = randomUUID()
  const run = { type: 'run', outcome: { code: null, message: '', body: '"output":"2","result":2,"logs":[]', runMs: 1.5, cpuMs: 1 }, queuedMs: 0.25 } as const
  const text = encodeAnswer(SECRET, taskId, run)
  t.same(decodeAnswer(SECRET, taskId, text), run)
  const refusal = { type: 'refusal', code: 'FORBIDDEN', message: 'no', details: { why: 'policy' } } as const
  t.same(decodeAnswer(SECRET, taskId, encodeAnswer(SECRET, taskId, refusal)), refusal)
  t.throws(() => decodeAnswer(SECRET, randomUUID(), text), { code: 'QUEUE_MESSAGE_INVALID' }, "another task's answer")
  t.throws(() => decodeAnswer('another-secret-entirely', taskId, text), { code: 'QUEUE_MESSAGE_INVALID' }, 'another secret')
  t.throws(() => decodeAnswer(SECRET, taskId, text.replace('"q":0.25', '"q":9')), { code: 'QUEUE_MESSAGE_INVALID' }, 'a changed body')
  t.throws(() => decodeAnswer(SECRET, taskId, 'no-dot'), { code: 'QUEUE_MESSAGE_INVALID' })
  const entry = encodeReplyEntry(context, taskId, text)
  t.same(decodeReplyEntry(entry), { context, taskId, answer: text })
  for (const bad of ['', 'a b c', `${context} not-a-uuid x`, `zz ${taskId} x`, 42]) t.throws(() => decodeReplyEntry(bad), { code: 'QUEUE_MESSAGE_INVALID' }, String(bad))
})

t.test('key layout', async (t) => {
  const keys = new QueueKeys('rhailib:')
  const id = randomUUID()
  t.same(
    [keys.queue(context), keys.task(context, id), keys.processing(context), keys.reply(context, id), keys.lease(context), keys.wake('n1', 3), keys.replies('n1'), keys.alive('n1')],
    [
      `rhailib:{${context}}`,
      `rhailib:{${context}}:${id}`,
      `rhailib:{${context}}:processing`,
      `rhailib:reply:{${context}}:${id}`,
      `rhailib:lease:{${context}}`,
      'rhailib:node:{n1}:wake:3',
      'rhailib:node:{n1}:replies',
      'rhailib:node:{n1}:alive',
    ],
  )
  t.ok(isValidPrefix('rhailib:') && isValidPrefix('test-1.a:'))
  for (const bad of ['', 'a{b', 'a}b', 'a b', 'x'.repeat(65)]) t.notOk(isValidPrefix(bad), JSON.stringify(bad))
})

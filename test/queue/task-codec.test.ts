import t from 'tap'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '../../src/identity/index.js'
import {
  decodeAnswer,
  decodeReplyEntry,
  encodeAnswer,
  encodeReplyEntry,
  encodeTask,
  parseOwnerToken,
  peekTask,
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

/** The stored task with element `i` of its array replaced. */
function tampered(q: QueuedTask, i: number, value: unknown, mac = signTask(SECRET, q)): string {
  const stored = JSON.parse(encodeTask(q, mac)) as { c: string; r: unknown[] }
  stored.r[i] = value
  return JSON.stringify(stored)
}

t.test('readTaskRow', async (t) => {
  const q = task()
  const stored = encodeTask(q, signTask(SECRET, q))
  t.same(readTaskRow(SECRET, context, [q.taskId, 'pending', stored, null]), { type: 'run', task: q }, 'a signed task reads back as written')
  const anonymous = task({ caller: '', timeoutMs: undefined, origin: '' })
  t.same(readTaskRow(SECRET, context, [anonymous.taskId, 'processing', encodeTask(anonymous, signTask(SECRET, anonymous)), null]), { type: 'run', task: anonymous })
  t.same(readTaskRow(SECRET, context, [q.taskId, null, null, null]), { type: 'gone', taskId: q.taskId }, 'an expired record')
  t.same(
    readTaskRow(SECRET, context, [q.taskId, 'completed', stored, 'mac.{}']),
    { type: 'done', taskId: q.taskId, status: 'completed', answer: 'mac.{}', deadline: q.deadline, replyTo: q.replyTo },
    'a completion record is answered as it is',
  )
  const other = generateKeyPair().publicKey
  const refused: [string, unknown, string?][] = [
    ['a bad MAC', [q.taskId, 'pending', encodeTask(q, 'AAAA'), null]],
    ['another secret', [q.taskId, 'pending', encodeTask(q, signTask('another-secret-entirely', q)), null]],
    ['the MAC of another context', [q.taskId, 'pending', encodeTask(q, signTask(SECRET, { ...q, context: other })), null]],
    ['read for another context', [q.taskId, 'pending', stored, null], other],
    ['stored under another id', [randomUUID(), 'pending', stored, null]],
    ['a changed script', [q.taskId, 'pending', tampered(q, 1, 'save_data("x", 1)'), null]],
    ['a changed caller', [q.taskId, 'pending', tampered(q, 2, generateKeyPair().publicKey), null]],
    ['a later deadline', [q.taskId, 'pending', tampered(q, 5, q.deadline + 1), null]],
    ['a task id that is not a UUID', ['x', 'pending', stored, null]],
    ['a row of the wrong shape', [q.taskId]],
    ['not a row', 'text'],
    ['a task that is not JSON', [q.taskId, 'pending', '{', null]],
    ['an unknown status', [q.taskId, 'weird', stored, null]],
    ['a deadline that is not a number', [q.taskId, 'pending', tampered(q, 5, 'soon'), null]],
    ['a reply_to that is not a node id', [q.taskId, 'pending', tampered(q, 4, '../x'), null]],
    ['a caller that is not a key', [q.taskId, 'pending', tampered(q, 2, 'alice'), null]],
    ['a bad timeout', [q.taskId, 'pending', tampered(q, 3, -1), null]],
    ['a completion without its answer', [q.taskId, 'completed', stored, null]],
  ]
  for (const [what, r, ctx] of refused) t.throws(() => readTaskRow(SECRET, ctx ?? context, r), { code: 'QUEUE_MESSAGE_INVALID' }, what)
})

t.test('hand-offs and lease tokens', async (t) => {
  const q = task()
  t.same(peekTask(encodeTask(q, 'x')), { context, taskId: q.taskId })
  for (const bad of ['{', '{"c":"x","r":[]}', '[]', 'null', 3]) t.throws(() => peekTask(bad), { code: 'QUEUE_MESSAGE_INVALID' }, String(bad))
  t.same(parseOwnerToken('0123456789abcdef.12'), { nodeId: '0123456789abcdef', epoch: 12 })
  for (const bad of ['0123456789abcdef', '0123456789abcdef.', 'zz.1', null, 3]) t.equal(parseOwnerToken(bad), undefined, String(bad))
})

t.test('answers and reply entries', async (t) => {
  const taskId = randomUUID()
  const run = { type: 'run', outcome: { code: null, message: '', body: '"output":"2","result":2,"logs":[]', runMs: 1.5, cpuMs: 1, callsMs: 0.5 }, queuedMs: 0.25 } as const
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

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '../../src/identity/index.js'
import { parsePolicy } from '../../src/policy/index.js'
import {
  decodeAnswer,
  decodeReplyEntry,
  encodeAnswer,
  encodeReplyEntry,
  encodeTask,
  leaseValue,
  macOf,
  parseOwnerToken,
  peekTask,
  readTaskRow,
  runHint,
  secretCheckValue,
  signTask,
  type MacField,
  type QueuedTask,
} from '../../src/queue/index.js'
import { isValidPrefix, QueuedBytes, QueueKeys, StartedTasks } from '../../src/queue/index.js'

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

/** A row of circlesTake / circlesRecover for a task to run. */
function runRow(taskId: string, text: unknown, status = 'pending'): unknown[] {
  return [taskId, status, text, null, null, null]
}

t.test('readTaskRow', async (t) => {
  const q = task()
  const stored = encodeTask(q, signTask(SECRET, q))
  t.same(readTaskRow(SECRET, context, runRow(q.taskId, stored)), { type: 'run', task: q }, 'a signed task reads back as written')
  const anonymous = task({ caller: '', timeoutMs: undefined, origin: '' })
  t.same(readTaskRow(SECRET, context, runRow(anonymous.taskId, encodeTask(anonymous, signTask(SECRET, anonymous)), 'processing')), { type: 'run', task: anonymous })
  t.same(readTaskRow(SECRET, context, [q.taskId, null, null, null, null, null]), { type: 'gone', taskId: q.taskId }, 'an expired record')
  t.same(
    readTaskRow(SECRET, context, [q.taskId, 'completed', null, 'mac.{}', String(q.deadline), q.replyTo]),
    { type: 'done', taskId: q.taskId, status: 'completed', answer: 'mac.{}', deadline: q.deadline, replyTo: q.replyTo },
    'a completion record (its script dropped) is answered as it is',
  )
  const other = generateKeyPair().publicKey
  const refused: [string, unknown, string?][] = [
    ['a bad MAC', runRow(q.taskId, encodeTask(q, 'AAAA'))],
    ['another secret', runRow(q.taskId, encodeTask(q, signTask('another-secret-entirely', q)))],
    ['the MAC of another context', runRow(q.taskId, encodeTask(q, signTask(SECRET, { ...q, context: other })))],
    ['read for another context', runRow(q.taskId, stored), other],
    ['stored under another id', runRow(randomUUID(), stored)],
    ['a task id that is not a UUID', runRow('x', stored)],
    ['a row of the wrong shape', [q.taskId]],
    ['a row of the old shape', [q.taskId, 'pending', stored, null]],
    ['not a row', 'text'],
    ['a task that is not JSON', runRow(q.taskId, '{')],
    ['an unknown status', runRow(q.taskId, stored, 'weird')],
    ['a deadline that is not a number', runRow(q.taskId, tampered(q, 5, 'soon'))],
    ['a reply_to that is not a node id', runRow(q.taskId, tampered(q, 4, '../x'))],
    ['a caller that is not a key', runRow(q.taskId, tampered(q, 2, 'alice'))],
    ['a bad timeout', runRow(q.taskId, tampered(q, 3, -1))],
    ['a completion without its answer', [q.taskId, 'completed', null, null, String(q.deadline), q.replyTo]],
    ['a completion without a deadline', [q.taskId, 'completed', null, 'mac.{}', 'soon', q.replyTo]],
    ['a completion with a bad reply_to', [q.taskId, 'error', null, 'mac.{}', String(q.deadline), 'x}:y']],
  ]
  for (const [what, r, ctx] of refused) t.throws(() => readTaskRow(SECRET, ctx ?? context, r), { code: 'QUEUE_MESSAGE_INVALID' }, what)
})

t.test('the task MAC covers every field: one changed, the MAC no longer verifies', async (t) => {
  const q = task()
  // A call's own fields: in 'a call task's MAC covers its chain, workflow and budget' below.
  const changes: Record<Exclude<keyof QueuedTask, 'call'>, Partial<QueuedTask>> = {
    taskId: { taskId: randomUUID() },
    context: { context: generateKeyPair().publicKey },
    caller: { caller: generateKeyPair().publicKey },
    script: { script: 'save_data("x", 1)' },
    timeoutMs: { timeoutMs: 501 },
    replyTo: { replyTo: 'fedcba9876543210' },
    deadline: { deadline: q.deadline + 1 },
    origin: { origin: '10.0.0.9' },
  }
  t.same(Object.keys(changes).sort(), Object.keys(q).sort(), 'a row for every field of a task')
  const more: [string, Partial<QueuedTask>][] = [
    ...Object.entries(changes),
    ['caller made anonymous', { caller: '' }],
    ['timeout_ms left out', { timeoutMs: undefined }],
    ['origin left out', { origin: '' }],
  ]
  for (const [what, change] of more) {
    const copy = { ...q, ...change }
    // The changed task with the original's MAC, read where the changed one would be.
    const row = runRow(copy.taskId, encodeTask(copy, signTask(SECRET, q)))
    t.throws(() => readTaskRow(SECRET, copy.context, row), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, what)
  }
})

t.test('a call task: its chain, workflow and run budget ride in the task, under its MAC', async (t) => {
  const client = generateKeyPair().publicKey
  const call = { chain: [client, caller], chainId: randomUUID(), runsLeft: 200 }
  const q = task({ call })
  const stored = encodeTask(q, signTask(SECRET, q))
  t.same(readTaskRow(SECRET, context, runRow(q.taskId, stored)), { type: 'run', task: q }, 'a signed call task reads back as written')
  const anonymousStart = task({ call: { ...call, chain: ['', caller] } })
  t.same(readTaskRow(SECRET, context, runRow(anonymousStart.taskId, encodeTask(anonymousStart, signTask(SECRET, anonymousStart)))), { type: 'run', task: anonymousStart }, 'a workflow an anonymous client started')

  const other = generateKeyPair().publicKey
  const changes: [string, Partial<QueuedTask>][] = [
    ['a context added to the chain', { call: { ...call, chain: [client, other, caller] } }],
    ['the chain’s client changed', { call: { ...call, chain: [other, caller] } }],
    ['another workflow', { call: { ...call, chainId: randomUUID() } }],
    ['a larger budget', { call: { ...call, runsLeft: 256 } }],
    ['the call part dropped: a play with a call’s MAC', { call: undefined }],
  ]
  for (const [what, change] of changes) {
    const copy = { ...q, ...change }
    t.throws(() => readTaskRow(SECRET, context, runRow(copy.taskId, encodeTask(copy, signTask(SECRET, q)))), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, what)
  }
  const play = task()
  const asCall = { ...play, call }
  t.throws(() => readTaskRow(SECRET, context, runRow(play.taskId, encodeTask(asCall, signTask(SECRET, play)))), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, 'a call part added to a play')

  const malformed: [string, unknown][] = [
    ['not an array', 'call'],
    ['a part of the wrong length', [call.chain, call.chainId]],
    ['a chain of one', [[caller], call.chainId, 1]],
    ['a chain the caller does not end', [[client, other], call.chainId, 1]],
    ['a chain with a key that is not a key', [[client, 'alice', caller], call.chainId, 1]],
    ['a chain that is too long', [[client, ...Array.from({ length: 300 }, () => other), caller], call.chainId, 1]],
    ['an empty chain id', [call.chain, '', 1]],
    ['a chain id that is too long', [call.chain, 'x'.repeat(65), 1]],
    ['a negative budget', [call.chain, call.chainId, -1]],
    ['a budget that is not an integer', [call.chain, call.chainId, 1.5]],
  ]
  for (const [what, part] of malformed) {
    t.throws(() => readTaskRow(SECRET, context, runRow(q.taskId, tampered(q, 8, part))), { code: 'QUEUE_MESSAGE_INVALID', message: /call/ }, what)
  }
  const anonymousCaller = task({ caller: '', call: { ...call, chain: [client, ''] } })
  t.throws(() => readTaskRow(SECRET, context, runRow(anonymousCaller.taskId, encodeTask(anonymousCaller, signTask(SECRET, anonymousCaller)))), { code: 'QUEUE_MESSAGE_INVALID' }, 'a call has a calling context, never an anonymous caller')
})

t.test('the MAC input is unambiguous: distinct fields never share bytes', async (t) => {
  // Encoded straight to UTF-8, both lone surrogates become U+FFFD and shared one MAC.
  const high = task({ script: 'save_data("s", "\ud800".length)' })
  const low = { ...high, script: 'save_data("s", "\udfff".length)' }
  t.not(signTask(SECRET, high), signTask(SECRET, low), 'a script with \\ud800 and one with \\udfff')
  t.throws(() => readTaskRow(SECRET, context, runRow(low.taskId, encodeTask(low, signTask(SECRET, high)))), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, 'the swapped task is refused')
  t.same(readTaskRow(SECRET, context, runRow(high.taskId, encodeTask(high, signTask(SECRET, high)))), { type: 'run', task: high }, 'and the original reads back, surrogate and all')
  const pairs: [MacField[], MacField[]][] = [
    [['ab', 'c'], ['a', 'bc']],
    [['\ud800'], ['\udfff']],
    [['\ud800'], ['\ufffd']],
    [[1], ['1']],
    [[null], ['']],
    [[null], ['null']],
    [['a', ''], ['a']],
  ]
  for (const [a, b] of pairs) t.not(macOf(SECRET, 'x', a), macOf(SECRET, 'x', b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
  t.not(macOf(SECRET, 'task', ['a']), macOf(SECRET, 'answer', ['a']), 'a MAC of one kind is not one of another')
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1.5, -0]) t.throws(() => macOf(SECRET, 'x', [bad]), TypeError, `${bad} is refused`)
})

t.test('hand-offs and lease tokens', async (t) => {
  const q = task()
  const peeked = peekTask(encodeTask(q, 'x'))
  t.same([peeked.context, peeked.taskId], [context, q.taskId])
  t.same(readTaskRow(SECRET, context, runRow(q.taskId, peekTask(encodeTask(q, signTask(SECRET, q))).parsed, 'processing')), { type: 'run', task: q }, 'read from its parsed form')
  for (const bad of ['{', '{"c":"x","r":[]}', '[]', 'null', 3]) t.throws(() => peekTask(bad), { code: 'QUEUE_MESSAGE_INVALID' }, String(bad))
  t.same(parseOwnerToken('0123456789abcdef.12.k'), { nodeId: '0123456789abcdef', epoch: 12, hint: 'k' })
  t.equal(leaseValue('0123456789abcdef', 3, 'a'), '0123456789abcdef.3.a')
  for (const bad of ['0123456789abcdef', '0123456789abcdef.12', '0123456789abcdef.1.x', 'zz.1.a', null, 3]) t.equal(parseOwnerToken(bad), undefined, String(bad))
  const key = generateKeyPair().publicKey
  t.same(
    [{ run: 'anonymous' }, { run: 'authenticated' }, { run: 'owner' }, { run: [key] }].map((run) => runHint(parsePolicy(run))),
    ['a', 'k', 'o', 'l'],
  )
  t.equal(secretCheckValue(SECRET), secretCheckValue(SECRET), 'the check value is the same on every node of a secret')
  t.not(secretCheckValue(SECRET), secretCheckValue('another-secret-entirely'))
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
  // Every member of an answer, changed with the MAC kept: refused.
  const withMember = (answer: string, key: string, value: unknown) => {
    const dot = answer.indexOf('.')
    const json = JSON.parse(answer.slice(dot + 1)) as Record<string, unknown>
    json[key] = value
    return `${answer.slice(0, dot)}.${JSON.stringify(json)}`
  }
  const runChanges: [string, unknown][] = [['t', 'refusal'], ['c', 'SCRIPT_ERROR'], ['m', 'other'], ['b', '"output":"3","result":3,"logs":[]'], ['r', 9], ['u', 9], ['q', 9], ['w', 9]]
  const refusalText = encodeAnswer(SECRET, taskId, refusal)
  const refusalChanges: [string, unknown][] = [['t', 'run'], ['c', 'AUTH_REQUIRED'], ['m', 'yes'], ['d', { why: 'other' }]]
  t.same(runChanges.map(([k]) => k).sort(), Object.keys(JSON.parse(text.slice(text.indexOf('.') + 1)) as object).sort(), 'a row for every member of a run answer')
  t.same(refusalChanges.map(([k]) => k).sort(), Object.keys(JSON.parse(refusalText.slice(refusalText.indexOf('.') + 1)) as object).sort(), 'and of a refusal')
  for (const [key, value] of runChanges) t.throws(() => decodeAnswer(SECRET, taskId, withMember(text, key, value)), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, `run answer: ${key} changed`)
  for (const [key, value] of refusalChanges) t.throws(() => decodeAnswer(SECRET, taskId, withMember(refusalText, key, value)), { code: 'QUEUE_MESSAGE_INVALID', message: /MAC does not verify/ }, `refusal: ${key} changed`)
  t.throws(() => decodeAnswer(SECRET, taskId, 'no-dot'), { code: 'QUEUE_MESSAGE_INVALID' })
  const entry = encodeReplyEntry(context, taskId, text)
  t.same(decodeReplyEntry(entry), { context, taskId, answer: text })
  for (const bad of ['', 'a b c', `${context} not-a-uuid x`, `zz ${taskId} x`, 42]) t.throws(() => decodeReplyEntry(bad), { code: 'QUEUE_MESSAGE_INVALID' }, String(bad))
})

t.test('key layout', async (t) => {
  const keys = new QueueKeys('rhailib:')
  const id = randomUUID()
  t.same(
    [keys.queue(context), keys.task(context, id), keys.processing(context), keys.lease(context), keys.wake('n1', 3), keys.replies('n1'), keys.alive('n1'), keys.secretCheck()],
    [
      `rhailib:{${context}}`,
      `rhailib:{${context}}:${id}`,
      `rhailib:{${context}}:processing`,
      `rhailib:lease:{${context}}`,
      'rhailib:node:{n1}:wake:3',
      'rhailib:node:{n1}:replies',
      'rhailib:node:{n1}:alive',
      'rhailib:cluster:secret-check',
    ],
  )
  t.ok(isValidPrefix('rhailib:') && isValidPrefix('test-1.a:'))
  for (const bad of ['', 'a{b', 'a}b', 'a b', 'x'.repeat(65)]) t.notOk(isValidPrefix(bad), JSON.stringify(bad))
})

t.test('StartedTasks: an id is remembered until its deadline plus the allowance, then forgotten', async (t) => {
  let now = 1_000_000
  const started = new StartedTasks(5_000, () => now)
  const a = randomUUID()
  const b = randomUUID()
  started.add(a, now + 10_000)
  started.add(b, now + 60_000)
  t.ok(started.has(a) && started.has(b))
  now += 15_000 // a's deadline plus the allowance, to the millisecond
  t.ok(started.has(a), 'not forgotten at its deadline plus the allowance')
  now += 1_001
  t.notOk(started.has(a), 'forgotten past it')
  t.ok(started.has(b), 'another, with a later deadline, kept')
  t.equal(started.size, 1)
  now += 60_000
  t.notOk(started.has(b))
  t.equal(started.size, 0)
})

t.test('QueuedBytes: per address and per node, given back on release', async (t) => {
  const queued = new QueuedBytes(100, 150)
  t.equal(queued.charge('a', 60), undefined)
  t.match(queued.charge('a', 41), { code: 'OVERLOADED', details: { scope: 'address', limit: 100 } }, 'over the address budget')
  t.equal(queued.charge('b', 90), undefined)
  t.match(queued.charge('c', 1), { code: 'OVERLOADED', details: { scope: 'gateway', limit: 150 } }, 'over the node budget')
  queued.release('a', 60)
  t.equal(queued.charge('c', 60), undefined, 'released bytes are charged again')
  t.equal(queued.bytes, 150)
})

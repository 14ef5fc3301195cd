/**
 * The queue's Lua scripts run as they are against a real redis-server (the file's own, on a free
 * port): each script's effect on its keys and its return value, including what it does with keys
 * someone else wrote (wrong types, ids that are not task ids, entries over the cap).
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { CHECK, COMPLETE, ENQUEUE, PUSH, RECOVER, RELEASE, TAKE } from '../../src/queue/scripts.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

const NODE = '0123456789abcdef'
const OTHER_NODE = 'fedcba9876543210'
const CTX = '02' + 'ab'.repeat(32)
const CALLER = '03' + 'cd'.repeat(32)
const DAY = 86_400_000

async function setup(t: Test, name: string) {
  const prefix = testPrefix(name)
  const { redis } = await testRedis(t, prefix)
  const tag = `${prefix}{${CTX}}`
  return {
    redis,
    prefix,
    keys: { queue: `${tag}:queue`, processing: `${tag}:processing`, lease: `${tag}:lease`, task: (id: string) => `${tag}:task:${id}`, taskPrefix: `${tag}:task:` },
    nodes: `${prefix}node:{`,
  }
}

function evalScript(redis: Redis, script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
  return redis.eval(script, keys.length, ...keys, ...args.map(String))
}

t.test('PUSH appends and sets the expiry; RELEASE deletes only its own node lease; CHECK sets, refreshes or reports', async (t) => {
  const { redis, prefix } = await setup(t, 'scripts-small')
  const list = `${prefix}node:{${NODE}}:wake:1`
  t.equal(await evalScript(redis, PUSH, [list], [60_000, 'a', 'b']), 2)
  t.equal(await evalScript(redis, PUSH, [list], [120_000, 'c']), 3)
  t.same(await redis.lrange(list, 0, -1), ['a', 'b', 'c'])
  const ttl = await redis.pttl(list)
  t.ok(ttl > 60_000 && ttl <= 120_000, 'the expiry is the latest push')

  const lease = `${prefix}lease`
  await redis.set(lease, `${OTHER_NODE}.3.a`)
  t.equal(await evalScript(redis, RELEASE, [lease], [NODE]), 0, 'another node lease stays')
  t.equal(await redis.get(lease), `${OTHER_NODE}.3.a`)
  await redis.set(lease, `${NODE}.7.k`)
  t.equal(await evalScript(redis, RELEASE, [lease], [NODE]), 1, 'its own, any epoch')
  t.equal(await redis.exists(lease), 0)
  await redis.set(lease, `${NODE}7.k`)
  t.equal(await evalScript(redis, RELEASE, [lease], [NODE]), 0, 'a prefix of the id that is not followed by "." is not its own')
  await redis.del(lease)
  await redis.rpush(lease, 'x')
  t.equal(await evalScript(redis, RELEASE, [lease], [NODE]), 0, 'a key of another type is left alone, no error')

  const check = `${prefix}check`
  t.equal(await evalScript(redis, CHECK, [check], ['mine', 10_000]), 'mine', 'missing: set')
  t.ok((await redis.pttl(check)) <= 10_000)
  t.equal(await evalScript(redis, CHECK, [check], ['mine', 50_000]), 'mine')
  t.ok((await redis.pttl(check)) > 10_000, 'its own value: refreshed')
  t.equal(await evalScript(redis, CHECK, [check], ['theirs', 90_000]), 'mine', 'another value: reported, not changed')
  t.ok((await redis.pttl(check)) <= 50_000)
  await redis.del(check)
  await redis.hset(check, 'f', 'v')
  t.equal(await evalScript(redis, CHECK, [check], ['mine', 1_000]), '', 'a key of another type')
})

/** ENQUEUE of `callers` (one task each) for CTX with the lease set to `lease`; returns [result, ids]. */
async function enqueue(redis: Redis, keys: Awaited<ReturnType<typeof setup>>['keys'], nodes: string, callers: string[], deadline: number, completed: string[] = []) {
  const ids = callers.map(() => randomUUID())
  const args: (string | number)[] = [Date.now(), 0, nodes, 30_000, OTHER_NODE, CTX, ids.length]
  ids.forEach((id, i) => args.push(id, deadline, callers[i]!, `task-json-${i}`))
  const result = await evalScript(redis, ENQUEUE, [keys.queue, keys.processing, keys.lease, ...ids.map(keys.task), ...completed], args)
  return { result, ids }
}

t.test('ENQUEUE: the lease run hint decides; no lease writes nothing', async (t) => {
  const { redis, keys } = await setup(t, 'scripts-enqueue')
  const deadline = Date.now() + DAY
  const callers = ['', CALLER, CTX]
  t.same((await enqueue(redis, keys, '', callers, deadline)).result, [[null, '']], 'no lease: nothing, no verdicts')
  t.equal(await redis.exists(keys.queue), 0)
  for (const [hint, verdicts] of [['a', 'qqq'], ['k', 'Aqq'], ['l', 'Aqq'], ['o', 'AFq']] as const) {
    await redis.set(keys.lease, `${NODE}.2.${hint}`)
    const { result, ids } = await enqueue(redis, keys, '', callers, deadline)
    t.same(result, [[`${NODE}.2.${hint}`, verdicts]], `hint ${hint}`)
    const queued = ids.filter((_, i) => verdicts[i] === 'q')
    t.same((await redis.lrange(keys.queue, -queued.length, -1)), queued, `hint ${hint}: queued ids appended`)
    for (const [i, id] of ids.entries()) t.equal(await redis.exists(keys.task(id)), verdicts[i] === 'q' ? 1 : 0, `hint ${hint}: task ${i} written only when queued`)
  }
  const [first] = await redis.lrange(keys.queue, 0, 0)
  t.match(await redis.hgetall(keys.task(first!)), { task: 'task-json-0', status: 'pending', deadline: String(deadline), owner: `${NODE}.2.a`, reply_to: OTHER_NODE })
  const pexpiretime = Number(await redis.call('PEXPIRETIME', keys.task(first!)))
  t.equal(pexpiretime, deadline, 'the task expires at its deadline (retention 0)')
  t.equal(Number(await redis.call('PEXPIRETIME', keys.queue)), deadline, 'and so does the queue')
})

t.test('ENQUEUE on one server: a hand-off to the owner when the queue is empty, a wake otherwise; read records deleted', async (t) => {
  const { redis, keys, nodes } = await setup(t, 'scripts-handoff')
  const deadline = Date.now() + DAY
  await redis.set(keys.lease, `${NODE}.5.a`)
  const wake = `${nodes}${NODE}}:wake:5`
  const first = await enqueue(redis, keys, nodes, [CALLER], deadline)
  t.same(first.result, [[`${NODE}.5.a`, 'q']])
  t.same(await redis.lrange(keys.processing, 0, -1), first.ids, 'handed off: straight to processing')
  t.equal(await redis.llen(keys.queue), 0)
  t.same(await redis.lrange(wake, 0, -1), ['task-json-0'], 'the task itself on the owner wake list')
  t.equal(await redis.hget(keys.task(first.ids[0]!), 'status'), 'processing')
  await redis.rpush(keys.queue, 'someone-else')
  const answered = `${keys.taskPrefix}${randomUUID()}`
  await redis.hset(answered, 'status', 'completed', 'answer', 'x')
  const second = await enqueue(redis, keys, nodes, [CALLER], deadline, [answered])
  t.same(await redis.lrange(keys.queue, 0, -1), ['someone-else', ...second.ids], 'a non-empty queue: queued')
  t.same(await redis.lrange(wake, 0, -1), ['task-json-0', CTX], 'and the context key on the wake list')
  t.equal(await redis.exists(answered), 0, 'the completion record the gateway read is deleted')
})

t.test('ENQUEUE: a lease or list of the wrong type writes nothing for that context', async (t) => {
  const { redis, keys } = await setup(t, 'scripts-enqueue-poison')
  const deadline = Date.now() + DAY
  await redis.hset(keys.lease, 'x', 'y')
  t.same((await enqueue(redis, keys, '', [CALLER], deadline)).result, [['', '']], 'an unreadable lease: ""')
  await redis.del(keys.lease)
  await redis.set(keys.lease, `${NODE}.1.a`)
  await redis.set(keys.queue, 'not a list')
  const { result, ids } = await enqueue(redis, keys, '', [CALLER], deadline)
  t.same(result, [['', '']], 'a queue that is not a list: nothing written')
  t.equal(await redis.exists(keys.task(ids[0]!)), 0)
  await redis.set(keys.lease, 'not a lease')
  await redis.del(keys.queue)
  t.same((await enqueue(redis, keys, '', [CALLER], deadline)).result, [['not a lease', '']], 'a value that is not a lease: no owner, nothing written')
})

t.test('TAKE: moves tasks to processing, marks them, drops and counts poison', async (t) => {
  const { redis, keys } = await setup(t, 'scripts-take')
  const deadline = Date.now() + DAY
  await redis.set(keys.lease, `${NODE}.1.a`)
  const { ids } = await enqueue(redis, keys, '', [CALLER, CALLER, CALLER], deadline)
  const wrongType = randomUUID()
  await redis.set(keys.task(wrongType), 'not a hash')
  const huge = randomUUID()
  await redis.hset(keys.task(huge), 'status', 'pending', 'task', 'x'.repeat(200))
  await redis.rpush(keys.queue, 'not-a-task-id', wrongType, huge)
  const now = Date.now()
  const taken = (await evalScript(redis, TAKE, [keys.queue, keys.processing], [2, now, 0, 100, keys.taskPrefix])) as unknown[]
  t.equal(taken[0], 0, 'nothing poisoned among the first two')
  t.same(taken[1], [1, [ids[0], 'pending', 'task-json-0', null, String(deadline), OTHER_NODE, `${NODE}.1.a`], [ids[1], 'pending', 'task-json-1', null, String(deadline), OTHER_NODE, `${NODE}.1.a`]], 'rows as read, and more to come')
  t.equal(await redis.hget(keys.task(ids[0]!), 'status'), 'processing')
  t.equal(await redis.hget(keys.task(ids[0]!), 'started_at'), String(now))
  t.same(await redis.lrange(keys.processing, 0, -1), ids.slice(0, 2))
  const rest = (await evalScript(redis, TAKE, [keys.queue, keys.processing], [10, now, 0, 100, keys.taskPrefix])) as unknown[]
  t.equal(rest[0], 3, 'an id that is not a task id, a key that is not a hash and a task over the cap')
  t.same((rest[1] as unknown[]).map((r, i) => (i === 0 ? r : (r as unknown[])[0])), [0, ids[2]], 'the good one taken, the queue empty')
  t.same(await redis.lrange(keys.processing, 0, -1), ids, 'poison does not reach the processing list')
  t.equal(await redis.llen(keys.queue), 0)
})

t.test('RECOVER: the processing list as rows, poison taken off it', async (t) => {
  const { redis, keys } = await setup(t, 'scripts-recover')
  const id = randomUUID()
  await redis.hset(keys.task(id), 'status', 'processing', 'task', 'T', 'deadline', '9', 'owner', `${NODE}.1.a`)
  await redis.rpush(keys.processing, 'junk', id, randomUUID())
  const out = (await evalScript(redis, RECOVER, [keys.processing], [keys.taskPrefix, 100])) as unknown[]
  t.equal(out[0], 1, 'the id that is not a task id')
  t.same(out.slice(1), [
    [id, 'processing', 'T', null, '9', null, `${NODE}.1.a`],
    [(await redis.lindex(keys.processing, 1))!, null, null, null, null, null, null],
  ], 'an expired task (no hash) is a row of nothing, left for its completion')
  t.equal(await redis.llen(keys.processing), 2, 'only the poison left the list')
  await redis.del(keys.processing)
  await redis.set(keys.processing, 'x')
  t.same(await evalScript(redis, RECOVER, [keys.processing], [keys.taskPrefix, 100]), [1], 'a processing key of the wrong type: counted')
})

t.test('COMPLETE: the record, the reply, repeats and answers past their deadline', async (t) => {
  const { redis, keys, nodes } = await setup(t, 'scripts-complete')
  const deadline = Date.now() + DAY
  await redis.set(keys.lease, `${NODE}.1.a`)
  const { ids } = await enqueue(redis, keys, '', [CALLER, CALLER, CALLER, CALLER], deadline)
  await evalScript(redis, TAKE, [keys.queue, keys.processing], [10, Date.now(), 0, 1_000, keys.taskPrefix])
  const [done, repeat, late, silent] = ids as [string, string, string, string]
  const now = Date.now()
  const args: (string | number)[] = [now, 0, nodes, 0, CTX, 4]
  args.push(done, 'completed', '{"r":1}', deadline, OTHER_NODE)
  args.push(repeat, 'repeat', '{"r":2}', deadline, OTHER_NODE)
  args.push(late, 'completed', '{"r":3}', now - 1, OTHER_NODE)
  args.push(silent, 'error', '', deadline, OTHER_NODE)
  t.equal(await evalScript(redis, COMPLETE, [keys.processing, ...ids.map(keys.task)], args), 0)
  t.same(await redis.hgetall(keys.task(done)), { status: 'completed', answer: '{"r":1}', deadline: String(deadline), reply_to: OTHER_NODE }, 'the record keeps what its gateway reads')
  t.equal(await redis.hget(keys.task(repeat), 'status'), 'processing', 'a repeat leaves its record as it was')
  t.equal(await redis.exists(keys.task(late)), 0, 'an answer past its deadline: no record')
  t.equal(await redis.exists(keys.task(silent)), 0, 'an empty answer: no record')
  t.same(await redis.lrange(`${nodes}${OTHER_NODE}}:replies`, 0, -1), [`${CTX} ${done} {"r":1}`], 'one reply: only the live answer')
  t.equal(Number(await redis.call('PEXPIRETIME', `${nodes}${OTHER_NODE}}:replies`)), deadline, 'the reply list lives until its latest deadline')
  t.equal(await redis.llen(keys.processing), 0, 'every id off the processing list, repeats included')
  await redis.rpush(keys.processing, done)
  await redis.set(`${nodes}${OTHER_NODE}}:replies`, 'not a list')
  await redis.del(keys.task(done))
  await redis.set(keys.task(done), 'not a hash')
  const poisoned = await evalScript(redis, COMPLETE, [keys.processing, keys.task(done)], [now, 0, nodes, 0, CTX, 1, done, 'completed', 'A', deadline, OTHER_NODE])
  t.equal(poisoned, 2, 'a task key and a reply list of the wrong type: counted, skipped')
  t.equal(await redis.llen(keys.processing), 0, 'and the id still leaves the processing list')
})

/**
 * The Lua scripts of the cross-node queue. Each runs atomically inside Redis and touches the keys
 * of one hash slot only (see keys.ts), so they work on a Redis Cluster too.
 *
 * Undeclared keys: circlesTake and circlesRecover read task hashes whose names they learn only
 * by popping an id (so they cannot be passed in KEYS). Those keys carry the context's hash tag,
 * so they live in the slot of KEYS[1] on the same cluster node; Redis 7 lets a script touch such
 * a key (it refuses only a key of another slot, or one this node does not serve). The cluster
 * test runs every script against a real 3-master cluster.
 */

/**
 * circlesEnqueue — queue tasks for one context, if a node serves it.
 * KEYS[1]      the context's queue
 * KEYS[2]      the context's lease
 * KEYS[3..]    the task hashes, one per task, in order
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a task record is kept after its deadline (ms)
 * ARGV[3..]    per task, 9 values: task_id, script, caller, context, timeout_ms, reply_to,
 *              deadline (unix ms), mac, origin
 * With no lease (no node serves the context) nothing is written and the result is false.
 * Otherwise each task hash is written (status `pending`, expiring `retention` after its
 * deadline), the ids are appended to the queue (which expires once its last task would have),
 * and the result is the lease: the owner's node id, to be woken.
 */
export const ENQUEUE = `
local owner = redis.call('GET', KEYS[2])
if not owner then return false end
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local latest = 0
local k = 3
for i = 3, #ARGV, 9 do
  local key = KEYS[k]
  k = k + 1
  local deadline = tonumber(ARGV[i + 6])
  redis.call('HSET', key, 'task_id', ARGV[i], 'script', ARGV[i + 1], 'caller', ARGV[i + 2], 'context', ARGV[i + 3],
    'timeout_ms', ARGV[i + 4], 'reply_to', ARGV[i + 5], 'deadline', ARGV[i + 6], 'mac', ARGV[i + 7], 'origin', ARGV[i + 8],
    'status', 'pending', 'created_at', now)
  redis.call('PEXPIREAT', key, deadline + retention)
  redis.call('RPUSH', KEYS[1], ARGV[i])
  if deadline > latest then latest = deadline end
end
local expiry = latest + retention
if redis.call('PEXPIRETIME', KEYS[1]) < expiry then redis.call('PEXPIREAT', KEYS[1], expiry) end
return owner
`

/**
 * circlesTake — the owner takes the oldest tasks of one context.
 * KEYS[1]  the context's queue
 * KEYS[2]  the context's processing list
 * ARGV[1]  the context's task key prefix
 * ARGV[2]  most tasks to take
 * ARGV[3]  now (unix ms)
 * ARGV[4]  how long a task record is kept after its deadline (ms)
 * Moves up to ARGV[2] ids from the queue to the processing list — a task leaves the processing
 * list only once its reply is written (circlesComplete); the list expires once its last task
 * would have — marks pending ones `processing`, and
 * returns for each [task_id, <TASK_FIELDS…>] (false for a field that is not set: an expired
 * task has none).
 */
export const TAKE = `
local out = {}
local latest = 0
for i = 1, tonumber(ARGV[2]) do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not id then break end
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 'status', 'script', 'caller', 'timeout_ms', 'reply_to', 'deadline', 'mac', 'answer', 'origin')
  if f[1] == 'pending' then redis.call('HSET', key, 'status', 'processing', 'started_at', ARGV[3]) end
  local deadline = tonumber(f[6]) or 0
  if deadline > latest then latest = deadline end
  table.insert(f, 1, id)
  out[#out + 1] = f
end
if #out > 0 then
  local expiry = math.max(latest, tonumber(ARGV[3])) + tonumber(ARGV[4])
  if redis.call('PEXPIRETIME', KEYS[2]) < expiry then redis.call('PEXPIREAT', KEYS[2], expiry) end
end
return out
`

/** The fields circlesTake and circlesRecover return after the task id, in this order. */
export const TASK_FIELDS = ['status', 'script', 'caller', 'timeout_ms', 'reply_to', 'deadline', 'mac', 'answer', 'origin'] as const

/**
 * circlesRecover — what a context's previous owner took and did not complete (its processing
 * list), for the node that serves the context now.
 * KEYS[1]  the context's processing list
 * ARGV[1]  the context's task key prefix
 * Returns, in order, [task_id, <TASK_FIELDS…>] for each; the ids stay in the list until
 * completed.
 */
export const RECOVER = `
local out = {}
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'status', 'script', 'caller', 'timeout_ms', 'reply_to', 'deadline', 'mac', 'answer', 'origin')
  table.insert(f, 1, id)
  out[#out + 1] = f
end
return out
`

/**
 * circlesComplete — record tasks' results and take them off the processing list.
 * KEYS[1]      the context's processing list
 * KEYS[2..]    per task, 2 keys: the task hash, the task's reply list
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a reply is kept after the task's deadline (ms)
 * ARGV[3..]    per task, 4 values: task_id, status (completed | error), answer (empty: nobody waits,
 *              e.g. an expired task), deadline (unix ms)
 * The task hash keeps the answer (the completion record a re-delivered task is answered from);
 * the reply list gets it too, expiring with the task. The id leaves the processing list last.
 * Returns the number completed.
 */
export const COMPLETE = `
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local k = 2
local n = 0
for i = 3, #ARGV, 4 do
  local task = KEYS[k]
  local reply = KEYS[k + 1]
  k = k + 2
  if redis.call('EXISTS', task) == 1 then
    redis.call('HSET', task, 'status', ARGV[i + 1], 'answer', ARGV[i + 2], 'completed_at', now)
  end
  if ARGV[i + 2] ~= '' then
    redis.call('RPUSH', reply, ARGV[i + 2])
    redis.call('PEXPIREAT', reply, tonumber(ARGV[i + 3]) + retention)
  end
  redis.call('LREM', KEYS[1], 1, ARGV[i])
  n = n + 1
end
return n
`

/**
 * circlesPush — append entries to a node's wake or reply list, which expires unless read.
 * KEYS[1]  the list
 * ARGV[1]  how long the list lives after this push (ms): a list whose node died goes away
 * ARGV[2..] the entries
 * Returns the list's length.
 */
export const PUSH = `
local n = redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return n
`

/**
 * circlesRelease — a node lets go of a lease it still holds (on a clean stop).
 * KEYS[1]  the lease
 * ARGV[1]  the node id: the lease is deleted only if it still names this node
 */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

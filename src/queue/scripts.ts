/**
 * The Lua scripts of the cross-node queue. Each runs atomically inside Redis and touches the keys
 * of one hash slot only (see keys.ts), so they work on a Redis Cluster too.
 *
 * Undeclared keys: circlesTake and circlesRecover read task hashes whose names they learn only
 * by popping an id (so they cannot be passed in KEYS). Those keys carry the context's hash tag,
 * so they live in the slot of the context's queue on the same cluster node; Redis 7 lets a
 * script touch such a key (it refuses only a key of another slot, or one this node does not
 * serve). The cluster test runs the scripts against a real 3-master cluster.
 *
 * On one Redis server (not a cluster) the bridge also lets circlesEnqueue and circlesComplete
 * write the nodes' wake and reply lists, so that handing tasks to their owner and answering a
 * gateway happen inside the same script: no take, no separate push. On a cluster those lists
 * live in other slots: the owner is woken and takes the queue, and the bridge pushes replies.
 *
 * Several contexts go in one call when their keys share a hash slot: every context on one
 * server, contexts of one slot on a cluster.
 */

/**
 * circlesEnqueue — queue tasks for one or more contexts (of one hash slot on a cluster), each if
 * a node serves it.
 * KEYS         per context: its queue, its processing list, its lease, then its task hashes in order
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a task record is kept after its deadline (ms)
 * ARGV[3]      what every node's list names start with (`<prefix>node:{`) on one server, where
 *              the script hands tasks to their owner itself; '' on a cluster (the nodes' lists
 *              are in other slots: the caller wakes the owners)
 * ARGV[4]      how long a node's wake list lives after a push (ms)
 * ARGV[5..]    per context: its key, its number of tasks n, then n × 3 values: task_id, deadline
 *              (unix ms), and the task as its owner reads it: one JSON text with its MAC
 *              (task-codec.ts), stored in the hash's `task` field and, on a hand-off, pushed
 *              onto the owner's wake list as it is
 * The lease holds the owner's token, `<node_id>.<epoch>`. For a context with no lease nothing is
 * written. Otherwise its task hashes are written, expiring `retention` after their deadline, and:
 * - hand-off (ARGV[3] set, the queue empty): each task goes straight to the processing list
 *   (status `processing`, `owner` = the token) and onto the owner's wake list of that epoch, so
 *   the owner runs it without taking it — one round trip less; the processing list is what a
 *   later owner re-delivers from, as for a taken task;
 * - otherwise each id is appended to the queue (status `pending`) and, on one server, the
 *   context's key onto the owner's wake list (the owner takes the queue).
 * Queues and processing lists expire once their last task would have.
 * Returns per context its lease — the owner's token — or false.
 */
export const ENQUEUE = `
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local nodes = ARGV[3]
local wakeTtl = tonumber(ARGV[4])
local owners = {}
local k = 1
local a = 5
local function extend(key, expiry)
  if redis.call('PEXPIRETIME', key) < expiry then redis.call('PEXPIREAT', key, expiry) end
end
while a <= #ARGV do
  local context = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local queue = KEYS[k]
  local processing = KEYS[k + 1]
  local owner = redis.call('GET', KEYS[k + 2])
  k = k + 3
  owners[#owners + 1] = owner
  local node, epoch = nil, nil
  if owner then node, epoch = string.match(owner, '^(%x+)%.(%d+)$') end
  if node then
    local wake = nil
    if nodes ~= '' then wake = nodes .. node .. '}:wake:' .. epoch end
    local handoff = wake ~= nil and redis.call('LLEN', queue) == 0
    local latest = 0
    for i = 0, n - 1 do
      local b = a + i * 3
      local deadline = tonumber(ARGV[b + 1])
      local status = 'pending'
      if handoff then status = 'processing' end
      redis.call('HSET', KEYS[k + i], 'task', ARGV[b + 2], 'status', status, 'deadline', ARGV[b + 1], 'created_at', now, 'owner', owner)
      redis.call('PEXPIREAT', KEYS[k + i], deadline + retention)
      if handoff then
        redis.call('RPUSH', processing, ARGV[b])
        redis.call('RPUSH', wake, ARGV[b + 2])
      else
        redis.call('RPUSH', queue, ARGV[b])
      end
      if deadline > latest then latest = deadline end
    end
    if handoff then extend(processing, latest + retention) else extend(queue, latest + retention) end
    if wake then
      if not handoff then redis.call('RPUSH', wake, context) end
      redis.call('PEXPIRE', wake, wakeTtl)
    end
  end
  k = k + n
  a = a + n * 3
end
return owners
`

/**
 * circlesTake — the owner takes the oldest tasks of one or more contexts (of one hash slot on a
 * cluster).
 * KEYS         per context: its queue, its processing list
 * ARGV[1]      most tasks to take per context
 * ARGV[2]      now (unix ms)
 * ARGV[3]      how long a task record is kept after its deadline (ms)
 * ARGV[4..]    per context: its task key prefix
 * Moves up to ARGV[1] ids of each context from its queue to its processing list — a task leaves
 * the processing list only once its reply is written (circlesComplete); the list expires once
 * its last task would have — marks pending ones `processing`, and returns per context a list of
 * [task_id, status, task, answer] (false for a field that is not set: an expired task has none).
 */
export const TAKE = `
local max = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local all = {}
for c = 4, #ARGV do
  local queue = KEYS[(c - 4) * 2 + 1]
  local processing = KEYS[(c - 4) * 2 + 2]
  local out = {}
  local latest = 0
  for i = 1, max do
    local id = redis.call('LMOVE', queue, processing, 'LEFT', 'RIGHT')
    if not id then break end
    local key = ARGV[c] .. id
    local f = redis.call('HMGET', key, 'status', 'task', 'answer', 'deadline')
    if f[1] == 'pending' then redis.call('HSET', key, 'status', 'processing', 'started_at', now) end
    local deadline = tonumber(f[4]) or 0
    f[4] = nil
    if deadline > latest then latest = deadline end
    table.insert(f, 1, id)
    out[#out + 1] = f
  end
  if #out > 0 then
    local expiry = math.max(latest, now) + retention
    if redis.call('PEXPIRETIME', processing) < expiry then redis.call('PEXPIREAT', processing, expiry) end
  end
  all[#all + 1] = out
end
return all
`

/**
 * circlesRecover — what a context's previous owner took and did not complete (its processing
 * list), for the node that serves the context now.
 * KEYS[1]  the context's processing list
 * ARGV[1]  the context's task key prefix
 * Returns, in order, [task_id, status, task, answer, owner] for each (owner: the token of the
 * node the task was handed to or queued for); the ids stay in the list until completed.
 */
export const RECOVER = `
local out = {}
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'status', 'task', 'answer', 'owner')
  table.insert(f, 1, id)
  out[#out + 1] = f
end
return out
`

/**
 * circlesComplete — record tasks' results, reply, and take them off their processing lists, for
 * one or more contexts (of one hash slot on a cluster).
 * KEYS         per context: its processing list, then per task its hash and its reply list
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a reply is kept after the task's deadline (ms)
 * ARGV[3]      what every node's list names start with (`<prefix>node:{`) on one server, where the
 *              script pushes each reply to its gateway node's list; '' on a cluster (the caller
 *              pushes the replies, whose lists are in other slots)
 * ARGV[4]      how long a node's reply list lives after a push (ms)
 * ARGV[5..]    per context: its key, its number of tasks n, then n × 5 values: task_id, status
 *              (completed | error), answer (empty: nobody waits, e.g. an expired task), deadline
 *              (unix ms), reply_to (a node id, or empty)
 * The task hash keeps the answer (the completion record a re-delivered task is answered from);
 * the task's reply list gets it too, expiring with the task; with ARGV[3] the answer is pushed
 * to the waiting node's reply list as `<context> <task_id> <answer>`. The id leaves the
 * processing list last. Returns the number completed.
 */
export const COMPLETE = `
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local nodes = ARGV[3]
local repliesTtl = tonumber(ARGV[4])
local k = 1
local a = 5
local done = 0
while a <= #ARGV do
  local context = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local processing = KEYS[k]
  k = k + 1
  for i = 0, n - 1 do
    local b = a + i * 5
    local task = KEYS[k + i * 2]
    local reply = KEYS[k + i * 2 + 1]
    local answer = ARGV[b + 2]
    if redis.call('EXISTS', task) == 1 then
      redis.call('HSET', task, 'status', ARGV[b + 1], 'answer', answer, 'completed_at', now)
    end
    if answer ~= '' then
      redis.call('RPUSH', reply, answer)
      redis.call('PEXPIREAT', reply, tonumber(ARGV[b + 3]) + retention)
      if nodes ~= '' and ARGV[b + 4] ~= '' then
        local list = nodes .. ARGV[b + 4] .. '}:replies'
        redis.call('RPUSH', list, context .. ' ' .. ARGV[b] .. ' ' .. answer)
        redis.call('PEXPIRE', list, repliesTtl)
      end
    end
    redis.call('LREM', processing, 1, ARGV[b])
    done = done + 1
  end
  k = k + n * 2
  a = a + n * 5
end
return done
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

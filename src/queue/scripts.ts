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
 *
 * Redis is a trust boundary (docs/cluster.md): anyone who can write to it can put anything in
 * these keys. So the scripts check what they read where they use it — an id popped from a list
 * must be a task id before it names a key, an entry over the size cap is not handed on, and a key
 * of the wrong type (WRONGTYPE) is caught with redis.pcall instead of aborting the script, which
 * would stop every other context and task of its batch. What they skip is dropped and counted
 * (the scripts return how many; the bridge adds them to circles_cross_node_poisoned_total).
 */

/** Lua shared by the scripts: the task id pattern, and calls whose failure skips instead of aborting. */
const PRELUDE = `
local TASK_ID = '^${'[0-9a-f]'.repeat(8)}%-${'[0-9a-f]'.repeat(4)}%-${'[0-9a-f]'.repeat(4)}%-${'[0-9a-f]'.repeat(4)}%-${'[0-9a-f]'.repeat(12)}$'
local LEASE = '^(${'[0-9a-f]'.repeat(16)})%.(%d+)%.([akol])$'
local poisoned = 0
-- A call on a key someone else may have written: an error (a key of the wrong type) is counted
-- and answered as (nil, true) instead of aborting the script.
local function try(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    poisoned = poisoned + 1
    return nil, true
  end
  return r, false
end
-- A row for the task \`id\` under key prefix \`prefix\` — {id, status, task, answer, deadline,
-- reply_to, owner} — or nil (counted) for an id that is not a task id, a key that is not a
-- hash, or a task or answer over \`maxEntry\` bytes.
local function readRow(prefix, id, maxEntry)
  if #id ~= 36 or not string.find(id, TASK_ID) then
    poisoned = poisoned + 1
    return nil
  end
  local f, bad = try('HMGET', prefix .. id, 'status', 'task', 'answer', 'deadline', 'reply_to', 'owner')
  if bad then return nil end
  if (f[2] and #f[2] > maxEntry) or (f[3] and #f[3] > maxEntry) then
    poisoned = poisoned + 1
    return nil
  end
  return {id, f[1], f[2], f[3], f[4], f[5], f[6]}
end
`

/**
 * circlesEnqueue — queue tasks for one or more contexts (of one hash slot on a cluster), each if
 * a node serves it and its lease's run hint does not refuse the caller.
 * KEYS         per context: its queue, its processing list, its lease, then its task hashes in
 *              order; after the last context, the completion records the caller has read (its
 *              answered tasks, of this slot), which are deleted
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a task record is kept after its deadline (ms): 0, nothing outlives it
 * ARGV[3]      what every node's list names start with (`<prefix>node:{`) on one server, where
 *              the script hands tasks to their owner itself; '' on a cluster (the nodes' lists
 *              are in other slots: the caller wakes the owners)
 * ARGV[4]      how long a node's wake list lives after a push of a context key (ms); a hand-off
 *              makes it live until the deadline of the latest task in it
 * ARGV[5]      the node that waits for the replies (the caller's node id), kept in each task hash
 * ARGV[6..]    per context: its key, its number of tasks n, then n × 4 values: task_id, deadline
 *              (unix ms), caller ('' when anonymous), and the task as its owner reads it: one
 *              JSON text with its MAC (task-codec.ts), stored in the hash's `task` field and, on a
 *              hand-off, pushed onto the owner's wake list as it is
 * The lease holds `<node_id>.<epoch>.<run hint>` (task-codec.ts, leaseValue). A task the hint
 * refuses — an anonymous caller where the hint is not `a`, or a caller other than the context
 * itself where it is `o` — is not written at all: a refused play costs Redis nothing. For a
 * context with no lease nothing is written. Otherwise the task hashes are written, expiring
 * `retention` (0) after their deadline, and:
 * - hand-off (ARGV[3] set, the queue empty): each task goes straight to the processing list
 *   (status `processing`, `owner` = the lease) and onto the owner's wake list of that epoch, so
 *   the owner runs it without taking it — one round trip less; the processing list is what a
 *   later owner re-delivers from, as for a taken task;
 * - otherwise each id is appended to the queue (status `pending`) and, on one server, the
 *   context's key onto the owner's wake list (the owner takes the queue).
 * Queues and processing lists expire once their last task would have; on a hand-off the owner's
 * wake list too (a context key pushed onto it keeps it ARGV[4] longer).
 * The completion records after the contexts' keys are deleted last: their gateway has read them.
 * Returns per context {lease, verdicts}: the lease as read (false: none; '': a key of the wrong
 * type, nothing written), and one character per task — `q` queued, `A` refused as anonymous,
 * `F` refused as not the owner.
 */
export const ENQUEUE = `${PRELUDE}
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local nodes = ARGV[3]
local wakeTtl = tonumber(ARGV[4])
local replyTo = ARGV[5]
local out = {}
local k = 1
local a = 6
-- Owners' wake lists met (checked to be lists), and the latest expiry each needs.
local wakes = {}
local function extend(key, expiry)
  if redis.call('PEXPIRETIME', key) < expiry then redis.call('PEXPIREAT', key, expiry) end
end
-- One RPUSH per 1,000 values (Lua's unpack has a stack limit).
local function pushAll(key, values)
  for i = 1, #values, 1000 do redis.call('RPUSH', key, unpack(values, i, math.min(i + 999, #values))) end
end
while a <= #ARGV do
  local context = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local queue = KEYS[k]
  local processing = KEYS[k + 1]
  local owner, unreadable = try('GET', KEYS[k + 2])
  k = k + 3
  local node, epoch, hint = nil, nil, nil
  if unreadable then owner = '' elseif owner then node, epoch, hint = string.match(owner, LEASE) end
  local verdicts = {}
  if node then
    local wake = nil
    if nodes ~= '' then wake = nodes .. node .. '}:wake:' .. epoch end
    -- Every list this context's tasks may go to must be a list, or nothing is written.
    local queued, bad1 = try('LLEN', queue)
    local _, bad2 = try('LLEN', processing)
    local bad3 = false
    if wake and wakes[wake] == nil then
      _, bad3 = try('LLEN', wake)
      if not bad3 then wakes[wake] = 0 end
    end
    if bad1 or bad2 or bad3 then
      owner = ''
    else
      local handoff = wake ~= nil and queued == 0
      local latest = 0
      -- The ids and hand-offs of this context, pushed in one RPUSH each after the loop.
      local ids, entries = {}, {}
      for i = 0, n - 1 do
        local b = a + i * 4
        local caller = ARGV[b + 2]
        local verdict = 'q'
        if hint ~= 'a' and caller ~= context then
          if caller == '' then verdict = 'A' elseif hint == 'o' then verdict = 'F' end
        end
        verdicts[#verdicts + 1] = verdict
        if verdict == 'q' then
          local deadline = tonumber(ARGV[b + 1])
          local status = 'pending'
          if handoff then status = 'processing' end
          redis.call('HSET', KEYS[k + i], 'task', ARGV[b + 3], 'status', status, 'deadline', ARGV[b + 1], 'created_at', now, 'owner', owner, 'reply_to', replyTo)
          redis.call('PEXPIREAT', KEYS[k + i], deadline + retention)
          ids[#ids + 1] = ARGV[b]
          if handoff then entries[#entries + 1] = ARGV[b + 3] end
          if deadline > latest then latest = deadline end
        end
      end
      if latest > 0 then
        if handoff then
          pushAll(processing, ids)
          pushAll(wake, entries)
          extend(processing, latest + retention)
          if wakes[wake] < latest + retention then wakes[wake] = latest + retention end
        else
          pushAll(queue, ids)
          extend(queue, latest + retention)
          if wake then
            redis.call('RPUSH', wake, context)
            if wakes[wake] < tonumber(now) + wakeTtl then wakes[wake] = tonumber(now) + wakeTtl end
          end
        end
      end
    end
  end
  out[#out + 1] = {owner, table.concat(verdicts)}
  k = k + n
  a = a + n * 4
end
-- Each owner's wake list written lives until its latest expiry (checked and extended once per script).
for wake, expiry in pairs(wakes) do
  if expiry > 0 then extend(wake, expiry) end
end
-- Answered tasks whose completion records the gateway has read: nothing keeps them now.
for i = k, #KEYS, 1000 do redis.call('DEL', unpack(KEYS, i, math.min(i + 999, #KEYS))) end
return out
`

/**
 * circlesTake — the owner takes the oldest tasks of one or more contexts (of one hash slot on a
 * cluster).
 * KEYS         per context: its queue, its processing list
 * ARGV[1]      most entries to pop per context
 * ARGV[2]      now (unix ms)
 * ARGV[3]      how long a task record is kept after its deadline (ms): 0
 * ARGV[4]      the largest task or answer handed on (bytes)
 * ARGV[5..]    per context: its task key prefix
 * Pops up to ARGV[1] ids of each context from its queue. An id that is not a task id, names a key
 * that is not a hash, or whose task or answer is over the cap is dropped (counted); the others
 * move to the processing list — a task leaves it only once its reply is written
 * (circlesComplete); the list expires once its last task would have — and pending ones are marked
 * `processing`. Returns {poisoned, per context {more, row…}}: how many entries were dropped, and
 * per context whether its queue still holds entries (1 or 0) and its rows {task_id, status, task,
 * answer, deadline, reply_to, owner} (false for a field that is not set: an expired task has none).
 */
export const TAKE = `${PRELUDE}
local max = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local maxEntry = tonumber(ARGV[4])
local all = {0}
for c = 5, #ARGV do
  local queue = KEYS[(c - 5) * 2 + 1]
  local processing = KEYS[(c - 5) * 2 + 2]
  local out = {0}
  local _, bad1 = try('LLEN', queue)
  local _, bad2 = try('LLEN', processing)
  if not (bad1 or bad2) then
    local latest = 0
    for i = 1, max do
      local id = redis.call('LPOP', queue)
      if not id then break end
      local row = readRow(ARGV[c], id, maxEntry)
      if row then
        redis.call('RPUSH', processing, id)
        if row[2] == 'pending' then redis.call('HSET', ARGV[c] .. id, 'status', 'processing', 'started_at', now) end
        local deadline = tonumber(row[5]) or 0
        if deadline > latest then latest = deadline end
        out[#out + 1] = row
      end
    end
    if redis.call('LLEN', queue) > 0 then out[1] = 1 end
    if #out > 1 then
      local expiry = math.max(latest, now) + retention
      if redis.call('PEXPIRETIME', processing) < expiry then redis.call('PEXPIREAT', processing, expiry) end
    end
  end
  all[#all + 1] = out
end
all[1] = poisoned
return all
`

/**
 * circlesRecover — what a context's previous owner took and did not complete (its processing
 * list), for the node that serves the context now.
 * KEYS[1]  the context's processing list
 * ARGV[1]  the context's task key prefix
 * ARGV[2]  the largest task or answer handed on (bytes)
 * Returns {poisoned, row…}, rows in order as {task_id, status, task, answer, deadline, reply_to,
 * owner} (owner: the lease the task was handed to or queued for); the ids stay in the list until
 * completed. An entry that is not a task id, names a key that is not a hash, or is over the cap is
 * taken off the list and counted instead.
 */
export const RECOVER = `${PRELUDE}
local maxEntry = tonumber(ARGV[2])
local out = {0}
local ids, bad = try('LRANGE', KEYS[1], 0, -1)
if not bad then
  for _, id in ipairs(ids) do
    local row = readRow(ARGV[1], id, maxEntry)
    if row then out[#out + 1] = row else redis.call('LREM', KEYS[1], 0, id) end
  end
end
out[1] = poisoned
return out
`

/**
 * circlesComplete — record tasks' results, reply, and take them off their processing lists, for
 * one or more contexts (of one hash slot on a cluster).
 * KEYS         per context: its processing list, then per task its hash
 * ARGV[1]      now (unix ms)
 * ARGV[2]      how long a completion record is kept after the task's deadline (ms): 0
 * ARGV[3]      what every node's list names start with (`<prefix>node:{`) on one server, where the
 *              script pushes each reply to its gateway node's list; '' on a cluster (the caller
 *              pushes the replies, whose lists are in other slots)
 * ARGV[4]      unused (kept for the argument layout; a reply list lives until its latest task's deadline)
 * ARGV[5..]    per context: its key, its number of tasks n, then n × 5 values: task_id, status
 *              (completed | error | repeat), answer (empty: nobody waits, e.g. an expired task),
 *              deadline (unix ms), reply_to (a node id, or empty)
 * The task hash becomes the completion record: everything but what its gateway may still read
 * is dropped (the script, the lease it was queued for, the timestamps) and it keeps `status`,
 * `answer`, `deadline` and `reply_to` — and the expiry circlesEnqueue gave it, its deadline — until its gateway has read the answer and deletes it (with its next
 * circlesEnqueue, or alone) and at most until the task's deadline. A task answered with nothing
 * (expired, refused on read) or completed past its deadline leaves no record and no reply. With ARGV[3] the answer is pushed to the waiting
 * node's reply list as `<context> <task_id> <answer>`; that list lives until the deadline of the
 * latest task answered in it (a gateway that died leaves nothing past its tasks' deadlines). The
 * id leaves the processing list last. A `repeat` — a task its owner had already started — only
 * leaves the processing list: its record stays as it was. Returns how many writes met a key of
 * the wrong type (skipped).
 */
export const COMPLETE = `${PRELUDE}
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local nodes = ARGV[3]
local k = 1
local a = 5
-- Each reply list written, and the latest deadline of what was pushed onto it (its expiry).
local lists = {}
while a <= #ARGV do
  local context = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local processing = KEYS[k]
  k = k + 1
  for i = 0, n - 1 do
    local b = a + i * 5
    local task = KEYS[k + i]
    local status = ARGV[b + 1]
    local answer = ARGV[b + 2]
    local expiry = tonumber(ARGV[b + 3]) + retention
    -- Past its deadline nobody reads an answer: nothing is written for it.
    if expiry <= now then answer = '' end
    if status ~= 'repeat' then
      if answer == '' then
        try('DEL', task)
      elseif redis.call('EXISTS', task) == 1 then
        -- The hash expires at the deadline already (circlesEnqueue): it becomes the record.
        local _, bad = try('HSET', task, 'status', status, 'answer', answer)
        if not bad then redis.call('HDEL', task, 'task', 'owner', 'created_at', 'started_at') end
      end
      if answer ~= '' and nodes ~= '' and ARGV[b + 4] ~= '' then
        local list = nodes .. ARGV[b + 4] .. '}:replies'
        local _, bad2 = try('RPUSH', list, context .. ' ' .. ARGV[b] .. ' ' .. answer)
        if not bad2 and (lists[list] or 0) < expiry then lists[list] = expiry end
      end
    end
    try('LREM', processing, 1, ARGV[b])
  end
  k = k + n
  a = a + n * 5
end
for list, expiry in pairs(lists) do
  if redis.call('PEXPIRETIME', list) < expiry then redis.call('PEXPIREAT', list, expiry) end
end
return poisoned
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
 * ARGV[1]  the node id: the lease is deleted only if it still names this node (any epoch)
 */
export const RELEASE = `
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'string' and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '.' then
  return redis.call('DEL', KEYS[1])
end
return 0
`

/**
 * circlesCheck — the cluster secret's check value (task-codec.ts, secretCheckValue): set it
 * when it is missing, refresh its expiry when it is this node's, and say what is there.
 * KEYS[1]  the check key
 * ARGV[1]  this node's check value
 * ARGV[2]  how long the value lives unless a node refreshes it (ms)
 * Returns the value found (ARGV[1] when it was missing and is now set; '' for a key of another type).
 */
export const CHECK = `
local v = redis.pcall('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if type(v) ~= 'string' then return '' end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`

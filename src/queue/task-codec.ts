import { createHmac, timingSafeEqual } from 'node:crypto'
import { isPositiveInteger } from '../config/index.js'
import { circlesError, isErrorCode, type CirclesError, type ErrorCode } from '../errors/index.js'
import { isCanonicalPublicKey } from '../identity/index.js'
import type { Policy } from '../policy/index.js'
import type { RunOutcome } from '../protocol/index.js'
import { callMacFields, encodeCall, readCall, type TaskCall } from './remote-calls.js'

/**
 * Tasks and replies cross Redis, which is a trust boundary: whoever can write to it could
 * otherwise queue a script as any caller, or answer a client with anything. Both carry an
 * HMAC-SHA256 made with the cluster secret that every node shares, over every field the other
 * side acts on. Everything read back from Redis is validated here: a task or reply that is
 * malformed or whose MAC does not verify is a QUEUE_MESSAGE_INVALID error, which the bridge logs
 * and counts, and never acts on.
 */

/** A task as queued by a gateway node. */
export interface QueuedTask {
  readonly taskId: string
  /** The context it runs in. */
  readonly context: string
  /** The authenticated caller ('' when anonymous). */
  readonly caller: string
  readonly script: string
  readonly timeoutMs: number | undefined
  /** The node that waits for the reply. */
  readonly replyTo: string
  /** Unix ms after which nobody waits for the reply. */
  readonly deadline: number
  /** Who sent it (remote address), for crash quarantine on the owner. */
  readonly origin: string
  /** A call from a run on another node (remote-calls.ts): `caller` is the calling context. */
  readonly call?: TaskCall
}

/** What an owner answers: a run's outcome, or a refusal before the run (policy, mailbox, …). */
export type TaskAnswer =
  | { readonly type: 'run'; readonly outcome: RunOutcome; readonly queuedMs: number }
  | { readonly type: 'refusal'; readonly code: ErrorCode; readonly message: string; readonly details: Record<string, unknown> }

/** A task id: a UUID as randomUUID() writes it. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** A node id (see RedisBridge.nodeId). */
const NODE_ID = /^[0-9a-f]{16}$/
const MAX_TIMEOUT_MS = 2 ** 31 - 1

export function isTaskId(value: unknown): value is string {
  return typeof value === 'string' && TASK_ID.test(value)
}

export function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && NODE_ID.test(value)
}

/** A context or caller key in its canonical form (compressed secp256k1, lower-case hex). */
export function isContextKey(value: unknown): value is string {
  return isCanonicalPublicKey(value)
}

/**
 * What a lease advertises of its context's run rule (`policy.run`), so that a gateway refuses
 * early — in the enqueue script, before anything is stored — what the owner would refuse:
 * `a` anyone may run, `k` any authenticated caller, `o` the owner only, `l` the owner and listed
 * keys (the owner alone knows the list). A hint: the owner checks its policy on every run.
 */
export type RunHint = 'a' | 'k' | 'o' | 'l'

export function runHint(policy: Policy): RunHint {
  if (policy.run === 'anonymous') return 'a'
  if (policy.run === 'authenticated') return 'k'
  if (policy.run === 'owner') return 'o'
  return 'l'
}

/** A lease's value: `<node_id>.<epoch>.<run hint>` (a node starts a new epoch at each connection to Redis). */
export function leaseValue(nodeId: string, epoch: number, hint: RunHint): string {
  return `${nodeId}.${epoch}.${hint}`
}

/** A lease's value read back: the owner's node id, its epoch and the run hint. */
export function parseOwnerToken(value: unknown): { readonly nodeId: string; readonly epoch: number; readonly hint: RunHint } | undefined {
  if (typeof value !== 'string') return undefined
  const match = /^([0-9a-f]{16})\.(\d{1,15})\.([akol])$/.exec(value)
  return match === null ? undefined : { nodeId: match[1]!, epoch: Number(match[2]), hint: match[3] as RunHint }
}

function invalid(reason: string, details: Record<string, unknown> = {}): CirclesError {
  return circlesError('QUEUE_MESSAGE_INVALID', `A message read from Redis was refused: ${reason}`, { reason, ...details })
}

/** The last secret's key bytes (every node has one secret: this is not a cache of many). */
let keyOf: { secret: string; key: Buffer } = { secret: '', key: Buffer.alloc(0) }

/** A field a MAC covers: text, a safe integer, or null (absent). */
export type MacField = string | number | null

/**
 * The MAC of everything that crosses Redis: HMAC-SHA256 with the cluster secret, base64url, over
 * the UTF-8 bytes of `JSON.stringify([domain, ...fields])`.
 *
 * Why that input: JSON quotes every string and escapes lone surrogates (`"\ud800"`), so the text
 * is well-formed UTF-16 and JSON.parse gives back the very same list — two distinct field lists
 * never share bytes (encoding each field straight to UTF-8 would turn every lone surrogate into
 * U+FFFD, and a script with `\ud800` would carry the MAC of one with `\udfff`). The domain names
 * the kind of message (`task`, `answer`, …), so a MAC made for one kind never verifies as another.
 * Every message that crosses Redis, now or later, is MAC'd through this one function.
 *
 * @example
 * macOf(secret, 'task', [taskId, context, caller, script, timeoutMs ?? null, replyTo, deadline, origin])
 */
export function macOf(secret: string, domain: string, fields: readonly MacField[]): string {
  // JSON writes NaN and Infinity as null, and -0 as 0: only integers keep the text one-to-one.
  for (const field of fields) if (typeof field === 'number' && (!Number.isSafeInteger(field) || Object.is(field, -0))) throw new TypeError('a MAC field must be a string, a safe integer or null')
  if (keyOf.secret !== secret) keyOf = { secret, key: Buffer.from(secret) }
  return createHmac('sha256', keyOf.key).update(JSON.stringify([domain, ...fields])).digest('base64url')
}

/** Whether a MAC read from Redis is the one expected (compared in constant time). */
export function sameMac(expected: string, found: string): boolean {
  const x = Buffer.from(expected)
  const y = Buffer.from(found)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Every field of a task, in the order its MAC covers them. */
function taskFields(task: QueuedTask): MacField[] {
  return [task.taskId, task.context, task.caller, task.script, task.timeoutMs ?? null, task.replyTo, task.deadline, task.origin]
}

export function signTask(secret: string, task: QueuedTask): string {
  // A call's MAC is of another domain: a play's never verifies as a call's, nor the reverse.
  if (task.call !== undefined) return macOf(secret, 'call', [...taskFields(task), ...callMacFields(task.call)])
  return macOf(secret, 'task', taskFields(task))
}

export function verifyTask(secret: string, task: QueuedTask, signature: string): boolean {
  return sameMac(signTask(secret, task), signature)
}

/**
 * The value every node of a cluster keeps in Redis (keys.ts, `secretCheck`): a MAC made with the
 * cluster secret, so that a node given another secret finds a value it cannot make, and refuses
 * to serve instead of queueing tasks no other node will accept.
 */
export function secretCheckValue(secret: string): string {
  return macOf(secret, 'secret-check', [])
}

/** A row of circlesTake / circlesRecover, read: a task to run or answer, or one whose record is gone. */
export type TaskRecord =
  | { readonly type: 'gone'; readonly taskId: string }
  | { readonly type: 'done'; readonly taskId: string; readonly status: 'completed' | 'error'; readonly answer: string; readonly deadline: number; readonly replyTo: string }
  | { readonly type: 'run'; readonly task: QueuedTask }

/**
 * A task as it is stored (the task hash's `task` field) and handed to its owner: one JSON text,
 * `{"c":<context>,"r":[task_id, script, caller, timeout_ms, reply_to, deadline, mac, origin]}`;
 * a call adds a ninth element, `[chain, chain_id, runs_left]` (remote-calls.ts).
 */
export function encodeTask(task: QueuedTask, mac: string): string {
  const r: unknown[] = [task.taskId, task.script, task.caller, task.timeoutMs ?? null, task.replyTo, task.deadline, mac, task.origin]
  if (task.call !== undefined) r.push(encodeCall(task.call))
  return JSON.stringify({ c: task.context, r })
}

/** A task's text as parsed once (a wake-list entry is peeked at, then read, without parsing it twice). */
interface ParsedTask {
  readonly c?: unknown
  readonly r?: unknown
}

function parseTask(text: unknown): ParsedTask {
  if (typeof text !== 'string') return {}
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as ParsedTask) : {}
  } catch {
    return {}
  }
}

/**
 * The context and id of a handed-off task (not yet checked: see readTaskRow), and the task as
 * parsed, for the row handed to readTaskRow. Throws QUEUE_MESSAGE_INVALID.
 */
export function peekTask(text: unknown): { context: string; taskId: string; parsed: object } {
  const parsed = parseTask(text)
  const { c, r } = parsed
  if (!isContextKey(c) || !Array.isArray(r) || !isTaskId(r[0])) throw invalid('a task that is not a task')
  return { context: c, taskId: r[0], parsed }
}

/** Read and check a stored task: its shape, its context, its MAC. Throws QUEUE_MESSAGE_INVALID. */
function readTask(secret: string, context: string, taskId: string, text: unknown): QueuedTask {
  const { c, r } = typeof text === 'string' ? parseTask(text) : ((text ?? {}) as ParsedTask)
  if (!Array.isArray(r) || (r.length !== 8 && r.length !== 9)) throw invalid('a task of the wrong shape', { task_id: taskId })
  const [id, script, caller, timeoutMs, replyTo, deadline, signature, origin, call] = r as unknown[]
  if (c !== context || id !== taskId) throw invalid('a task stored under another context or id', { task_id: taskId })
  if (typeof script !== 'string' || typeof origin !== 'string' || typeof signature !== 'string') throw invalid('a task with a missing field', { task_id: taskId })
  if (caller !== '' && !isContextKey(caller)) throw invalid('a task whose caller is not a public key', { task_id: taskId })
  if (!isNodeId(replyTo)) throw invalid('a task without a valid reply_to node id', { task_id: taskId })
  if (!isDeadline(deadline)) throw invalid('a task without a valid deadline', { task_id: taskId })
  if (timeoutMs !== null && !isPositiveInteger(timeoutMs, MAX_TIMEOUT_MS)) {
    throw invalid('a task with a bad timeout_ms', { task_id: taskId })
  }
  const task: QueuedTask = {
    taskId,
    context,
    caller: caller as string,
    script,
    timeoutMs: timeoutMs ?? undefined,
    replyTo,
    deadline,
    origin,
    ...(r.length === 9 ? { call: readCall(call, caller as string, taskId) } : {}),
  }
  if (!verifyTask(secret, task, signature)) throw invalid('a task whose MAC does not verify (is every node given the same cluster secret?)', { task_id: taskId })
  return task
}

function isDeadline(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

/**
 * Read one row of circlesTake / circlesRecover ([task_id, status, task, answer, deadline,
 * reply_to]) for context `context`. A task to run must have the right shape, context and id,
 * and a MAC that verifies. A completed one is answered from its record without its task (the
 * owner drops the script when it completes a task): its answer carries a MAC the gateway checks,
 * and its deadline and reply_to only say where that answer goes and for how long.
 * Throws QUEUE_MESSAGE_INVALID (with `details.task_id` when the id could be read) for anything else.
 */
export function readTaskRow(secret: string, context: string, row: unknown): TaskRecord {
  if (!Array.isArray(row) || row.length !== 6) throw invalid('a task row of the wrong shape')
  const [taskId, status, text, answer, deadlineText, replyTo] = row as unknown[]
  if (!isTaskId(taskId)) throw invalid('a task id that is not a UUID')
  if (status === null || status === undefined) return { type: 'gone', taskId }
  if (status === 'completed' || status === 'error') {
    if (typeof answer !== 'string' || answer === '') throw invalid('a completed task without its answer', { task_id: taskId })
    const deadline = Number(deadlineText)
    if (typeof deadlineText !== 'string' || !isDeadline(deadline)) throw invalid('a completed task without a valid deadline', { task_id: taskId })
    if (replyTo !== '' && !isNodeId(replyTo)) throw invalid('a completed task without a valid reply_to node id', { task_id: taskId })
    return { type: 'done', taskId, status, answer, deadline, replyTo: replyTo as string }
  }
  if (status !== 'pending' && status !== 'processing') throw invalid('a task with an unknown status', { task_id: taskId })
  return { type: 'run', task: readTask(secret, context, taskId, text) }
}

/**
 * The reply a gateway reads: `<mac>.<json>`, the MAC over the task id and the JSON. The same
 * text is the completion record kept in the task hash.
 */
export function encodeAnswer(secret: string, taskId: string, answer: TaskAnswer): string {
  const json =
    answer.type === 'run'
      ? JSON.stringify({ t: 'run', c: answer.outcome.code, m: answer.outcome.message, b: answer.outcome.body, r: answer.outcome.runMs, u: answer.outcome.cpuMs, w: answer.outcome.callsMs, q: answer.queuedMs })
      : JSON.stringify({ t: 'refusal', c: answer.code, m: answer.message, d: answer.details })
  return `${macOf(secret, 'answer', [taskId, json])}.${json}`
}

/** The answer in a reply. Throws QUEUE_MESSAGE_INVALID when it is malformed or its MAC does not verify. */
export function decodeAnswer(secret: string, taskId: string, text: string): TaskAnswer {
  const dot = text.indexOf('.')
  if (dot < 0) throw invalid('a reply without a MAC', { task_id: taskId })
  const json = text.slice(dot + 1)
  if (!sameMac(macOf(secret, 'answer', [taskId, json]), text.slice(0, dot))) throw invalid('a reply whose MAC does not verify (is every node given the same cluster secret?)', { task_id: taskId })
  let value: Record<string, unknown>
  try {
    value = JSON.parse(json) as Record<string, unknown>
  } catch {
    throw invalid('a reply that is not JSON', { task_id: taskId })
  }
  const code = value['c']
  const num = (k: string) => (typeof value[k] === 'number' && Number.isFinite(value[k]) ? (value[k] as number) : 0)
  if (value['t'] === 'run' && (code === null || isErrorCode(code)) && typeof value['m'] === 'string' && typeof value['b'] === 'string') {
    return { type: 'run', outcome: { code, message: value['m'], body: value['b'], runMs: num('r'), cpuMs: num('u'), callsMs: num('w') }, queuedMs: num('q') }
  }
  if (value['t'] === 'refusal' && isErrorCode(code) && typeof value['m'] === 'string') {
    const details = value['d'] !== null && typeof value['d'] === 'object' && !Array.isArray(value['d']) ? (value['d'] as Record<string, unknown>) : {}
    return { type: 'refusal', code, message: value['m'], details }
  }
  throw invalid('a reply of an unknown shape', { task_id: taskId })
}

/** A reply as pushed to the gateway node's reply list: `<context> <task_id> <answer>`. */
export function encodeReplyEntry(context: string, taskId: string, answer: string): string {
  return `${context} ${taskId} ${answer}`
}

/** Read a reply-list entry (its answer is checked later, by decodeAnswer). Throws QUEUE_MESSAGE_INVALID. */
export function decodeReplyEntry(entry: unknown): { context: string; taskId: string; answer: string } {
  if (typeof entry !== 'string') throw invalid('a reply entry that is not text')
  const a = entry.indexOf(' ')
  const b = a < 0 ? -1 : entry.indexOf(' ', a + 1)
  if (b < 0) throw invalid('a reply entry of the wrong shape')
  const context = entry.slice(0, a)
  const taskId = entry.slice(a + 1, b)
  if (!isContextKey(context) || !isTaskId(taskId)) throw invalid('a reply entry without a valid context and task id')
  return { context, taskId, answer: entry.slice(b + 1) }
}

import { createHmac, timingSafeEqual } from 'node:crypto'
import { isErrorCode, type ErrorCode } from '../errors/index.js'
import type { RunOutcome } from '../protocol/index.js'

/**
 * Tasks and replies cross Redis, which is a trust boundary: whoever can write to it could
 * otherwise queue a script as any caller, or answer a client with anything. Both carry an
 * HMAC-SHA256 made with the cluster secret that every node shares, over every field the other
 * side acts on; a task or reply whose MAC does not verify is refused and logged.
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
}

/** What an owner answers: a run's outcome, or a refusal before the run (policy, mailbox, …). */
export type TaskAnswer =
  | { readonly type: 'run'; readonly outcome: RunOutcome; readonly queuedMs: number }
  | { readonly type: 'refusal'; readonly code: ErrorCode; readonly message: string; readonly details: Record<string, unknown> }

function field(value: string): string {
  return `${value.length}:${value}`
}

function mac(secret: string, parts: readonly string[]): string {
  const h = createHmac('sha256', secret)
  for (const part of parts) h.update(field(part))
  return h.digest('base64url')
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function taskParts(task: QueuedTask): string[] {
  return [task.taskId, task.context, task.caller, task.script, task.timeoutMs === undefined ? '' : String(task.timeoutMs), task.replyTo, String(task.deadline), task.origin]
}

export function signTask(secret: string, task: QueuedTask): string {
  return mac(secret, taskParts(task))
}

export function verifyTask(secret: string, task: QueuedTask, signature: string): boolean {
  return same(signTask(secret, task), signature)
}

/**
 * The reply a gateway reads: `<mac>.<json>`, the MAC over the task id and the JSON. The same
 * text is the completion record kept in the task hash.
 */
export function encodeAnswer(secret: string, taskId: string, answer: TaskAnswer): string {
  const json =
    answer.type === 'run'
      ? JSON.stringify({ t: 'run', c: answer.outcome.code, m: answer.outcome.message, b: answer.outcome.body, r: answer.outcome.runMs, u: answer.outcome.cpuMs, q: answer.queuedMs })
      : JSON.stringify({ t: 'refusal', c: answer.code, m: answer.message, d: answer.details })
  return `${mac(secret, [taskId, json])}.${json}`
}

/** The answer in a reply, or undefined when it is malformed or its MAC does not verify. */
export function decodeAnswer(secret: string, taskId: string, text: string): TaskAnswer | undefined {
  const dot = text.indexOf('.')
  if (dot < 0) return undefined
  const json = text.slice(dot + 1)
  if (!same(mac(secret, [taskId, json]), text.slice(0, dot))) return undefined
  let value: Record<string, unknown>
  try {
    value = JSON.parse(json) as Record<string, unknown>
  } catch {
    return undefined
  }
  const code = value['c']
  if (value['t'] === 'run') {
    if (code !== null && !isErrorCode(code)) return undefined
    if (typeof value['m'] !== 'string' || typeof value['b'] !== 'string') return undefined
    const num = (k: string) => (typeof value[k] === 'number' ? (value[k] as number) : 0)
    return { type: 'run', outcome: { code, message: value['m'], body: value['b'], runMs: num('r'), cpuMs: num('u') }, queuedMs: num('q') }
  }
  if (value['t'] === 'refusal' && isErrorCode(code) && typeof value['m'] === 'string') {
    const details = value['d'] !== null && typeof value['d'] === 'object' ? (value['d'] as Record<string, unknown>) : {}
    return { type: 'refusal', code, message: value['m'], details }
  }
  return undefined
}

/** A reply as pushed to the gateway node's reply list: `<context> <task_id> <answer>`. */
export function encodeReplyEntry(context: string, taskId: string, answer: string): string {
  return `${context} ${taskId} ${answer}`
}

export function decodeReplyEntry(entry: string): { context: string; taskId: string; answer: string } | undefined {
  const a = entry.indexOf(' ')
  const b = a < 0 ? -1 : entry.indexOf(' ', a + 1)
  if (b < 0) return undefined
  return { context: entry.slice(0, a), taskId: entry.slice(a + 1, b), answer: entry.slice(b + 1) }
}

/**
 * The notices of a context — its committed changes and emitted events, numbered by its change
 * log — and the JSON-RPC notifications that carry them (docs/protocol.md, "Live updates"). The
 * part of a notification that is the same for every subscriber is encoded once per notice; a
 * subscriber's own id is spliced in.
 */
import type { RunEffects } from './effects.js'

export type Notice =
  /** `value` is the document's JSON text; absent for a delete, and for a value over the limit (`truncated`). */
  | { readonly type: 'changed'; readonly name: string; readonly op: 'save' | 'delete'; readonly value?: string; readonly truncated?: true }
  | { readonly type: 'event'; readonly topic: string; readonly value: string; readonly caller: string }

/** Where a subscriber is in a context's notices: the log's epoch and the last seq it saw. */
export interface Position {
  readonly epoch: string
  readonly seq: number
}

/** A notice as the change log keeps it: numbered, timed, its notification encoded. */
export interface LoggedNotice {
  readonly seq: number
  readonly notice: Notice
  /** When it was logged (the log's clock, ms). */
  readonly at: number
  /** `{"jsonrpc":"2.0","method":…,"params":{"subscription":` */
  readonly head: string
  /** The rest of the notification after the subscription id. */
  readonly tail: string
  /** What it costs the log's byte bound: UTF-8 bytes of its encoded notification. */
  readonly bytes: number
}

const HEAD = {
  changed: '{"jsonrpc":"2.0","method":"changed","params":{"subscription":',
  event: '{"jsonrpc":"2.0","method":"event","params":{"subscription":',
} as const

/** The notices a run's effects make, in order; `caller` is who ran it (events name their sender). */
export function noticesOf(effects: RunEffects, caller: string): Notice[] {
  return effects.list.map((e): Notice => {
    switch (e.kind) {
      case 'save':
        return e.value === undefined ? { type: 'changed', name: e.name, op: 'save', truncated: true } : { type: 'changed', name: e.name, op: 'save', value: e.value }
      case 'delete':
        return { type: 'changed', name: e.name, op: 'delete' }
      case 'emit':
        return { type: 'event', topic: e.topic, value: e.value, caller }
    }
  })
}

/** Number and encode a notice for the log of `epoch`. */
export function logNotice(notice: Notice, position: Position, at: number): LoggedNotice {
  const where = `,"epoch":"${position.epoch}","seq":${position.seq}`
  let tail: string
  if (notice.type === 'event') {
    tail = `${where},"topic":${JSON.stringify(notice.topic)},"value":${notice.value},"caller":"${notice.caller}"}}`
  } else {
    const value = notice.value !== undefined ? `,"value":${notice.value}` : notice.truncated === true ? ',"truncated":true' : ''
    tail = `${where},"name":${JSON.stringify(notice.name)},"op":"${notice.op}"${value}}}`
  }
  const head = HEAD[notice.type]
  return { seq: position.seq, notice, at, head, tail, bytes: head.length + Buffer.byteLength(tail) }
}

/** The notification of `logged` for the subscription whose id, JSON-encoded, is `quotedId`. */
export function notificationText(quotedId: string, logged: LoggedNotice): string {
  return logged.head + quotedId + logged.tail
}

/**
 * `subscription_ended`: the node ended the subscription — its caller is no longer admitted
 * (FORBIDDEN, AUTH_REQUIRED), or the notices since its position were lost (RESYNC_REQUIRED, with
 * the position to read and subscribe again from).
 */
export function endedText(quotedId: string, code: string, message: string, position?: Position): string {
  const where = position === undefined ? '' : `,"epoch":"${position.epoch}","seq":${position.seq}`
  return `{"jsonrpc":"2.0","method":"subscription_ended","params":{"subscription":${quotedId},"code":"${code}","message":${JSON.stringify(message)}${where}}}`
}

import { ERROR_REGISTRY, isErrorCode } from '../errors/index.js'
import type { MethodParams, MethodResults, SubscribePosition } from '../protocol/messages.js'
import { RpcError, type CirclesClientError } from './errors.js'

/** What to watch: changes under `prefix`, events whose topic starts with one of `topics` (neither: everything). */
export interface SubscribeFilter {
  readonly prefix?: string
  readonly topics?: readonly string[]
  /** Resume from a position a handler saw earlier (its `epoch` and `seq`). */
  readonly after?: SubscribePosition
}

/** What a subscription's handler receives. */
export type LiveNotice =
  /** A committed write or delete; `value` is the document (absent for a delete, or `truncated`: read it). */
  | { readonly type: 'changed'; readonly epoch: string; readonly seq: number; readonly name: string; readonly op: 'save' | 'delete'; readonly value?: unknown; readonly truncated?: true }
  | { readonly type: 'event'; readonly epoch: string; readonly seq: number; readonly topic: string; readonly value: unknown; readonly caller: string }
  /**
   * RESYNC_REQUIRED: notices may have been missed (the connection was away too long, the context
   * lost its log). The subscription goes on from `epoch`/`seq`; read again what you show.
   */
  | { readonly type: 'resync'; readonly epoch: string; readonly seq: number; readonly error: RpcError }
  /** The node ended the subscription (`error.code`: FORBIDDEN after a policy change, …); nothing more comes. */
  | { readonly type: 'ended'; readonly error: CirclesClientError }

export type LiveHandler = (notice: LiveNotice) => void

/** Ends a subscription; carries the position the node answered when it accepted it. */
export type Unsubscribe = (() => Promise<void>) & SubscribePosition

/** One of a node's notifications, read and checked; undefined when it is not one the client knows. */
export type Notification =
  | { readonly method: 'changed' | 'event'; readonly subscription: string; readonly notice: Extract<LiveNotice, { type: 'changed' | 'event' }> }
  | { readonly method: 'subscription_ended'; readonly subscription: string; readonly error: RpcError }

type Json = Record<string, unknown>

const isPosition = (p: Json): boolean => typeof p['epoch'] === 'string' && Number.isSafeInteger(p['seq']) && (p['seq'] as number) >= 0

/**
 * Check a notification's params against the protocol. Returns the notification, a string naming
 * what is wrong with one the client knows, or undefined for a method it does not know (a newer
 * node's: ignored).
 */
export function readNotification(method: string, params: unknown): Notification | string | undefined {
  if (method !== 'changed' && method !== 'event' && method !== 'subscription_ended') return undefined
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return `${method}: "params" is not an object`
  const p = params as Json
  const subscription = p['subscription']
  if (typeof subscription !== 'string') return `${method}: "subscription" is not a string`
  if (method === 'subscription_ended') {
    if (typeof p['code'] !== 'string' || typeof p['message'] !== 'string') return 'subscription_ended: "code" and "message" must be strings'
    const code = p['code']
    const rpc = isErrorCode(code) ? ERROR_REGISTRY[code].rpc : null
    const error = new RpcError(rpc ?? ERROR_REGISTRY.INTERNAL_ERROR.rpc, p['message'], { code, ...(isPosition(p) ? { epoch: p['epoch'], seq: p['seq'] } : {}) })
    return { method, subscription, error }
  }
  if (!isPosition(p)) return `${method}: "epoch" and "seq" are not a position`
  const { epoch, seq } = p as { epoch: string; seq: number }
  if (method === 'event') {
    if (typeof p['topic'] !== 'string' || typeof p['caller'] !== 'string' || !('value' in p)) return 'event: needs "topic", "value" and "caller"'
    return { method, subscription, notice: { type: 'event', epoch, seq, topic: p['topic'], value: p['value'], caller: p['caller'] } }
  }
  const op = p['op']
  if (typeof p['name'] !== 'string' || (op !== 'save' && op !== 'delete')) return 'changed: needs "name" and "op" save or delete'
  const rest = 'value' in p ? { value: p['value'] } : p['truncated'] === true ? { truncated: true as const } : {}
  return { method, subscription, notice: { type: 'changed', epoch, seq, name: p['name'], op, ...rest } }
}

/** How the subscriptions reach the node: one request on the current connection. */
export type SubscriptionRequest = <M extends 'subscribe' | 'unsubscribe'>(method: M, params: MethodParams[M], onAnswer?: (result: MethodResults[M]) => void) => Promise<MethodResults[M]>

interface Live {
  readonly filter: SubscribeFilter
  readonly handler: LiveHandler
  /** The last position seen: resumed from after a reconnect. */
  position: SubscribePosition | undefined
  /** The node's id for it on the current connection. */
  id: string | undefined
  active: boolean
}

/**
 * The subscriptions of one client, across its connections: notifications go to their handler,
 * each remembering its position; after a reconnect every subscription resumes from where it was,
 * and a gap the node cannot fill (RESYNC_REQUIRED) is handed to the handler once the subscription
 * is in place again — so whatever the handler reads then, it misses nothing after.
 */
export class ClientSubscriptions {
  private readonly all = new Set<Live>()
  /** By the node's id, on the current connection. */
  private readonly byId = new Map<string, Live>()

  constructor(private readonly request: SubscriptionRequest) {}

  /** Subscribe; resolves once the node accepted (a refusal rejects), to a function that ends it. */
  async add(filter: SubscribeFilter, handler: LiveHandler): Promise<Unsubscribe> {
    const live: Live = { filter, handler, position: filter.after, id: undefined, active: true }
    this.all.add(live)
    try {
      await this.open(live)
    } catch (error) {
      this.all.delete(live)
      throw error
    }
    return Object.assign(() => this.remove(live), live.position!)
  }

  private async remove(live: Live): Promise<void> {
    if (!live.active) return
    live.active = false
    this.all.delete(live)
    await this.release(live)
  }

  /** Tell the node to end the live's subscription on this connection (if it has one). */
  private async release(live: Live): Promise<void> {
    const id = live.id
    if (id === undefined) return
    live.id = undefined
    this.byId.delete(id)
    // The connection may be gone: its subscriptions went with it.
    await this.request('unsubscribe', { subscription: id }).catch(() => {})
  }

  /**
   * Subscribe on the current connection, from the live's position. When notices were lost (the
   * node answers RESYNC_REQUIRED, or `lost` says it ended the subscription so), subscribe afresh
   * and then hand the handler `resync`: it reads again with the subscription in place, so nothing
   * after what it reads can be missed.
   */
  private async open(live: Live, lost?: RpcError): Promise<void> {
    const { prefix, topics } = live.filter
    const params = { ...(prefix === undefined ? {} : { prefix }), ...(topics === undefined ? {} : { topics }) }
    const bind = (result: MethodResults['subscribe']) => {
      live.id = result.subscription
      live.position = { epoch: result.epoch, seq: result.seq }
      if (live.active) this.byId.set(result.subscription, live)
    }
    if (lost === undefined) {
      try {
        await this.request('subscribe', live.position === undefined ? params : { ...params, after: live.position }, bind)
      } catch (error) {
        if (!(error instanceof RpcError) || error.code !== 'RESYNC_REQUIRED') throw error
        lost = error
      }
    }
    if (lost !== undefined) {
      await this.request('subscribe', params, bind)
      if (live.active) deliver(live, { type: 'resync', ...live.position!, error: lost })
    }
    // Ended while the node was answering.
    if (!live.active) await this.release(live)
  }

  /** A notification from the node. */
  receive(notification: Notification): void {
    const live = this.byId.get(notification.subscription)
    if (live === undefined) return
    if (notification.method !== 'subscription_ended') {
      // Replayed or live, in order; the position resumes after it.
      live.position = { epoch: notification.notice.epoch, seq: notification.notice.seq }
      return deliver(live, notification.notice)
    }
    this.byId.delete(notification.subscription)
    live.id = undefined
    if (notification.error.code === 'RESYNC_REQUIRED') {
      this.open(live, notification.error).catch((error: CirclesClientError) => this.end(live, error))
      return
    }
    this.end(live, notification.error)
  }

  private end(live: Live, error: CirclesClientError): void {
    if (!live.active) return
    live.active = false
    this.all.delete(live)
    deliver(live, { type: 'ended', error })
  }

  /** The connection dropped: the node's ids are gone with it. */
  dropped(): void {
    this.byId.clear()
    for (const live of this.all) live.id = undefined
  }

  /** A new connection is up: every subscription resumes from its position. */
  resume(): void {
    for (const live of this.all) this.open(live).catch((error: CirclesClientError) => this.end(live, error))
  }

  /** The client closed: nothing more is delivered. */
  clear(): void {
    for (const live of this.all) live.active = false
    this.all.clear()
    this.byId.clear()
  }
}

/** A handler that throws is the application's bug, not the connection's: report it without stopping delivery. */
function deliver(live: Live, notice: LiveNotice): void {
  try {
    live.handler(notice)
  } catch (error) {
    queueMicrotask(() => {
      throw error
    })
  }
}

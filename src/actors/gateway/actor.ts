import { createActor, type Actor } from 'xstate'
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { circlesError, closeCodeOf, isCirclesError, type CirclesError } from '../../errors/index.js'
import { FAULT_MARKER, type Faults } from '../../faults/index.js'
import type { Claimant, PublicKeyHex } from '../../identity/index.js'
import type { ClientAddress, ClientAddresses, Clock, LoadLimits, SendAccount, SendBudget, SendBudgetName } from '../../limits/index.js'
import type { AddressSubscriptions, Position, Subscriber } from '../../live/index.js'
import type { Logger } from '../../log/index.js'
import type { NodeMetrics } from '../../metrics/index.js'
import {
  encodePlayAnswer,
  errorResponse,
  parseFrame,
  type Call,
  type ClaimParams,
  type FrameEntry,
  type FrameLimits,
  type JsonRpcId,
  type MethodParams,
} from '../../protocol/index.js'
import { ExitListeners, type ChildHandle, type ExitReason } from '../../supervisor/index.js'
import type { ContextSubscription, PeerHost, PlayOutcome, PlayRequest } from '../peer/index.js'
import type { Verifier } from '../../verifier/index.js'
import { BatchAnswer } from './batch-answer.js'
import { gatewayMachine, type GatewayMachine } from './machine.js'
import { Outbox } from './outbox.js'
import { issueSignInMessage, type SignInSite } from './sign-in.js'
import { SocketSubscription } from './socket-subscription.js'

export interface GatewayLimits extends FrameLimits {
  readonly maxInFlight: number
  /** Bytes waiting for a socket that does not read, past which it is cut (SLOW_CONSUMER). */
  readonly maxBufferedBytes: number
  /** Bytes waiting for the sockets of one address (IPv6: /64), past which the one holding most is cut. */
  readonly maxBufferedBytesPerAddress: number
  /** Bytes waiting for all sockets of the node, past which the one holding most is cut. */
  readonly maxBufferedBytesPerNode: number
  /** Bytes a socket may have unwritten in the WebSocket layer; past them answers wait in the node and the socket is not read. */
  readonly socketHighWaterBytes: number
  /** UTF-8 bytes of the answers of one batch; entries past it are answered OUTPUT_TOO_LARGE. */
  readonly maxBatchAnswerBytes: number
  readonly nonceTtlMs: number
  readonly idleTimeoutMs: number
  /** How long a draining connection waits for its requests in flight. */
  readonly drainTimeoutMs: number
  /** Subscriptions one socket may hold. */
  readonly maxSubscriptions: number
  /** How often a socket with subscriptions is pinged (its pongs keep it from being idle). */
  readonly pingIntervalMs: number
}

export interface GatewayServices {
  readonly peers: PeerHost
  /** Run a play in a context this node hosts, or (clustered) queue it to the node that does. */
  readonly play: (pubkey: PublicKeyHex, request: PlayRequest) => Promise<PlayOutcome>
  /** Whether a key names a context a connection may target: hosted here, or anywhere when clustered. */
  readonly reaches: (pubkey: PublicKeyHex) => boolean
  /** Subscribe to a context's changes and events (coded errors when refused). */
  /** Subscribe on the node (a context it hosts), or through Redis (another node's: answered later). */
  readonly subscribe: (pubkey: PublicKeyHex, subscriber: Subscriber, after?: Position) => ContextSubscription | Promise<ContextSubscription>
  /** Subscriptions held per remote address, across the node. */
  readonly subscriptions: AddressSubscriptions
  readonly verifier: Verifier
  readonly metrics: NodeMetrics
  readonly limits: GatewayLimits
  readonly load: LoadLimits
  /** Who a connection is from (trusted proxies' forwarded-for headers). */
  readonly clients: ClientAddresses
  /** The node's budget of bytes waiting on sockets: every message sent is charged to it. */
  readonly sendBudget: SendBudget
  /** What the idle timer and the pauses read time from. */
  readonly clock: Clock
  readonly log: Logger
  readonly faults: Faults
  /** Logs an authentication failure unless too many were logged lately. */
  readonly logAuthFailure: (address: string, code: string) => void
}

/**
 * Which circle a connection talks to — a hosted peer, and where the client dialled it (its
 * sign-in messages name that) — or a path that names none.
 */
export type GatewayTarget =
  | { readonly type: 'circle'; readonly pubkey: PublicKeyHex; readonly site: SignInSite }
  | { readonly type: 'unknown'; readonly path: string }

/** How long a socket closing after a protocol error may take to finish the closing handshake. */
const ERROR_CLOSE_GRACE_MS = 5_000

const BINARY_REFUSED = circlesError('INVALID_REQUEST', 'Invalid Request: binary frames are not accepted; send text frames')

/** What a `subscribe` answers: the subscription's id and its position. */
type Subscribed = { subscription: string } & Position

/** Why a socket is not read from now: its answers wait in the node, or its address spent its frame budget. */
type Hold = 'answers' | 'frames'

let sockets = 0

/** Whether an entry runs something (the rest are refused or dropped without running). */
function runs(entry: FrameEntry): boolean {
  return entry.type === 'call' || entry.type === 'notify'
}

function encodeSuccess(id: JsonRpcId, resultJson: string): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`
}

/** The id an entry is answered with, or undefined when it gets no answer (notifications). */
function answerId(entry: FrameEntry): JsonRpcId | undefined {
  return entry.type === 'call' || entry.type === 'reject' ? entry.id : undefined
}

/** The wire form `{ pubkey }` / `{ address }` as the tagged claim the auth machine compares. */
function claimantOf(params: ClaimParams): Claimant {
  return params.address === undefined ? { type: 'pubkey', pubkey: params.pubkey } : { type: 'address', address: params.address }
}

/**
 * One WebSocket connection: JSON-RPC in, answers out, with the auth lifecycle in
 * {@link gatewayMachine}. `play` is the hot path and does not go through the machine: it reads
 * the caller the machine established.
 *
 * Every answer is bounded before it is built (a run's answer by the sandbox; a batch's answers
 * by a byte budget charged in request order) and every path that builds one ends in a handler:
 * whatever fails there is answered INTERNAL_ERROR with a correlation id that is also logged.
 *
 * A connection is a `temporary` child of its port's supervisor: it reports its end when the
 * socket closes.
 */
export class GatewayConnection implements ChildHandle {
  /** The client's address (logged). */
  readonly remoteAddress: string
  /** The client's origin: what per-address limits and the crash quarantine count (an IPv6 /64). */
  readonly origin: string
  private readonly socket: WebSocket
  private readonly target: GatewayTarget
  private readonly services: GatewayServices
  private readonly actor: Actor<GatewayMachine>
  private readonly clock: Clock
  /** Per-socket limits are kept under this key. */
  private readonly key = `socket:${++sockets}`
  private readonly account: SendAccount
  private readonly outbox: Outbox
  /** When the client last sent a frame or took an answer. */
  private lastActivity: number
  private idleTimer: unknown
  private readonly holds = new Set<Hold>()
  private framesTimer: unknown
  private graceTimer: unknown
  /** Aborted once the node stops serving this client (cut or idle): its plays not started yet are dropped. */
  private readonly dropped = new AbortController()
  private caller: PublicKeyHex | '' = ''
  /** Mirrors the machine being in `open` (read on every frame). */
  private open = true
  private inFlight = 0
  private draining = false
  private drained: (() => void) | undefined
  private nextToken = 1
  /** authenticate requests awaiting the machine, by internal token. */
  private readonly authWaiters = new Map<number, { id: JsonRpcId | undefined; resolve: (text: string | undefined) => void }>()
  /** A failed authenticate (or auth abuse): take no more frames, close once what is in flight is answered. */
  private closeAfterAnswer: { readonly code: string; readonly wsCode: number } | undefined
  private readonly exits = new ExitListeners()
  private readonly subscriptions = new Map<string, SocketSubscription>()
  private nextSubscription = 1
  /** Subscriptions created by the frame being handled: their notifications wait for its answer. */
  private frameSubscriptions: SocketSubscription[] | undefined
  private pingTimer: unknown

  constructor(socket: WebSocket, target: GatewayTarget, services: GatewayServices, client: ClientAddress) {
    this.socket = socket
    this.target = target
    this.services = services
    this.remoteAddress = client.address
    this.origin = client.origin
    this.clock = services.clock
    this.account = services.sendBudget.open(this.origin, (budget, final) => this.cut(budget, final))
    this.outbox = new Outbox(socket, this.account, services.limits.socketHighWaterBytes, {
      onFlushed: () => {
        this.lastActivity = this.clock.now()
      },
      onBackedUp: (backedUp) => {
        if (backedUp) services.metrics.backpressurePause()
        this.hold('answers', backedUp)
      },
    })
    this.actor = createActor(gatewayMachine, {
      input: {
        nonceTtlMs: services.limits.nonceTtlMs,
        verify: ({ nonce, signature, claimant }) => services.verifier.verify(nonce, signature, claimant),
      },
    })
    this.actor.subscribe((snapshot) => this.onTransition(snapshot))
    this.actor.start()
    this.lastActivity = this.clock.now()
    this.idleTimer = this.clock.setTimeout(this.onIdleTimer, services.limits.idleTimeoutMs)
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary))
    socket.on('close', () => this.onClose())
    // A subscriber may have nothing to send for long: answering the node's pings keeps it open.
    socket.on('pong', () => {
      this.lastActivity = this.clock.now()
    })
    socket.on('error', () => {
      // ws reports a protocol error (a text frame that is not UTF-8: 1007; over the frame limit:
      // 1009) after it began the closing handshake with that code. Cutting the connection now
      // would drop the close frame (the client would see 1006): cut it only if the handshake
      // does not finish in time.
      if (socket.readyState === socket.CLOSING) setTimeout(() => socket.terminate(), ERROR_CLOSE_GRACE_MS).unref()
      else socket.terminate()
    })
    services.metrics.connection()
  }

  /** ChildHandle: drain (finish what is in flight, then close with SHUTTING_DOWN's close code). */
  stop(): Promise<void> {
    return this.shutdown(this.services.limits.drainTimeoutMs)
  }

  /** ChildHandle: cut the socket now. */
  kill(): void {
    this.socket.terminate()
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  /** Stop taking requests, wait for those in flight (at most `timeoutMs`), then close with SHUTTING_DOWN's close code. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true
    this.stopPinging()
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        this.drained = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    this.actor.send({ type: 'SHUTDOWN' })
  }

  private onClose(): void {
    this.clock.clearTimeout(this.idleTimer)
    this.clock.clearTimeout(this.framesTimer)
    this.clock.clearTimeout(this.graceTimer)
    for (const subscription of this.subscriptions.values()) this.release(subscription)
    this.subscriptions.clear()
    this.stopPinging()
    this.outbox.drop()
    // Whatever the socket still held is freed with it.
    this.account.close()
    this.services.load.socketClosed(this.key)
    this.actor.send({ type: 'SOCKET_CLOSED' })
    this.actor.stop()
    for (const waiter of this.authWaiters.values()) waiter.resolve(undefined)
    this.authWaiters.clear()
    this.exits.exit({ type: 'normal' })
  }

  private onTransition(snapshot: ReturnType<Actor<GatewayMachine>['getSnapshot']>): void {
    const { context } = snapshot
    this.open = snapshot.matches('open')
    if (snapshot.matches({ open: 'authenticated' }) && this.caller === '' && context.caller !== null) {
      this.caller = context.caller
      this.services.metrics.authentication('ok')
      const token = context.answered as number
      const waiter = this.authWaiters.get(token)
      this.authWaiters.delete(token)
      waiter?.resolve(waiter.id === undefined ? undefined : encodeSuccess(waiter.id, '{"authenticated":true}'))
      return
    }
    if (snapshot.matches('closing') && context.close !== null && this.socket.readyState === this.socket.OPEN) {
      const { close } = context
      const waiter = close.requestId === undefined ? undefined : this.authWaiters.get(close.requestId as number)
      if (waiter !== undefined) {
        // A failed authenticate: answer it with its frame (a batch stays an array), then close.
        this.authWaiters.delete(close.requestId as number)
        this.services.metrics.authentication(close.code)
        if (close.code !== 'OVERLOADED') {
          this.services.load.authFailed(this.origin)
          this.services.logAuthFailure(this.remoteAddress, close.code)
        }
        this.closeAfterAnswer = { code: close.code, wsCode: close.wsCode }
        waiter.resolve(waiter.id === undefined ? undefined : this.fail(waiter.id, circlesError(close.code)))
        return
      }
      this.closeNow(close.code, close.wsCode)
    }
  }

  /**
   * Close with a code, once what waits for the socket has gone out — except for a socket idle or
   * cut: it has not taken its answers for a while, so what waits is dropped (its plays not
   * started too) and the close frame goes out behind what the WebSocket layer already holds; if
   * the client does not answer it in time, the socket is cut.
   */
  private closeNow(code: string, wsCode: number): void {
    const stale = code === 'IDLE_TIMEOUT' || code === 'SLOW_CONSUMER'
    this.outbox.close(wsCode, code, stale)
    if (!stale) return
    this.dropped.abort()
    this.holds.clear()
    this.clock.clearTimeout(this.framesTimer)
    // The closing handshake needs the client's close frame: read again.
    this.socket.resume()
    this.graceTimer = this.clock.setTimeout(() => this.socket.terminate(), ERROR_CLOSE_GRACE_MS)
  }

  /**
   * The send budget cut this socket: the first time it is closed with SLOW_CONSUMER (what waits
   * for it is dropped); if it still holds the most when a budget is over again, it is cut for good.
   */
  private cut(budget: SendBudgetName, final: boolean): void {
    if (final) {
      this.socket.terminate()
      return
    }
    const { metrics, log } = this.services
    metrics.error('SLOW_CONSUMER')
    metrics.sendBudgetCut(budget)
    log.warn({ remote: this.remoteAddress, budget, waiting_bytes: this.outbox.bytes }, 'connection cut: it does not read what is sent to it (SLOW_CONSUMER)')
    if (this.open) this.actor.send({ type: 'CUT', code: 'SLOW_CONSUMER' })
    else this.closeNow('SLOW_CONSUMER', closeCodeOf('SLOW_CONSUMER'))
  }

  /** Stop reading the socket for `why`, or (`on` false) read again once nothing else holds it. */
  private hold(why: Hold, on: boolean): void {
    if (on) {
      if (this.holds.size === 0) this.socket.pause()
      this.holds.add(why)
      return
    }
    if (!this.holds.delete(why) || this.holds.size > 0) return
    this.socket.resume()
  }

  /** The address spent its frame budget: its next frames wait `ms` in the kernel. */
  private holdFrames(ms: number): void {
    this.clock.clearTimeout(this.framesTimer)
    this.hold('frames', true)
    this.framesTimer = this.clock.setTimeout(() => this.hold('frames', false), ms)
  }

  /** Idle: neither a frame nor a flushed answer for the idle timeout (checked when the timer fires). */
  private readonly onIdleTimer = (): void => {
    const left = this.services.limits.idleTimeoutMs - (this.clock.now() - this.lastActivity)
    if (left > 0) this.idleTimer = this.clock.setTimeout(this.onIdleTimer, left)
    else this.actor.send({ type: 'IDLE' })
  }

  private send(text: string | undefined): void {
    if (text !== undefined) this.outbox.push(text)
    // After a failed authenticate (or too many invalid frames), the requests accepted before it
    // are answered, then the socket closes.
    if (this.closeAfterAnswer !== undefined && this.inFlight === 0) {
      const { code, wsCode } = this.closeAfterAnswer
      this.outbox.close(wsCode, code)
    }
  }

  private fail(id: JsonRpcId, error: CirclesError): string {
    this.services.metrics.error(error.code)
    return JSON.stringify(errorResponse(id, error))
  }

  /** The answer to a request whose handling failed unexpectedly: logged, with a correlation id. */
  private internal(id: JsonRpcId | undefined, error: unknown, where: string): string | undefined {
    if (isCirclesError(error)) return id === undefined ? undefined : this.fail(id, error)
    const correlationId = randomBytes(8).toString('hex')
    this.services.log.error({ err: error, correlation_id: correlationId, where, remote: this.remoteAddress }, 'internal error answering a request')
    return id === undefined ? undefined : this.fail(id, circlesError('INTERNAL_ERROR', undefined, { correlation_id: correlationId }))
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    this.lastActivity = this.clock.now()
    // Every frame costs its sender, whatever becomes of it.
    const over = this.services.load.frame(this.origin, data.byteLength)
    if (over !== undefined) {
      this.services.metrics.limited(over.limit)
      this.holdFrames(over.waitMs)
    }
    if (!this.open || this.closeAfterAnswer !== undefined) return
    const frame = isBinary ? undefined : parseFrame(data, this.services.limits)
    if (frame === undefined || (frame.type === 'single' ? !runs(frame.entry) : !frame.entries.some(runs))) {
      const refused = this.services.load.invalidFrame(this.key, this.origin)
      if (refused !== undefined) {
        this.services.metrics.limited('invalid_frames')
        this.closeAfterAnswer = { code: 'RATE_LIMITED', wsCode: closeCodeOf('RATE_LIMITED') }
        this.send(this.fail(null, refused))
        return
      }
    }
    if (frame === undefined) {
      this.send(this.fail(null, BINARY_REFUSED))
      return
    }
    const subscribed: SocketSubscription[] = []
    this.frameSubscriptions = subscribed
    try {
      this.answerFrame(frame, (text) => {
        this.send(text)
        for (const subscription of subscribed) subscription.activate()
      })
    } finally {
      this.frameSubscriptions = undefined
    }
  }

  /** Handle a frame's entries and call `answer` once with the frame's whole answer. */
  private answerFrame(frame: ReturnType<typeof parseFrame>, answer: (text: string | undefined) => void): void {
    if (frame.type === 'single') {
      const id = answerId(frame.entry)
      const text = this.handle(frame.entry)
      if (typeof text === 'string' || text === undefined) answer(text)
      else text.then(answer).catch((error: unknown) => answer(this.internal(id, error, 'answer')))
      return
    }
    const { entries } = frame
    const budget = this.services.limits.maxBatchAnswerBytes
    const batch = new BatchAnswer(
      entries.length,
      budget,
      (i) =>
        this.fail(
          answerId(entries[i]!) ?? null,
          circlesError('OUTPUT_TOO_LARGE', `The answers of this batch are over ${budget} bytes; this entry's answer was dropped`, { limit: budget }),
        ),
      answer,
    )
    entries.forEach((entry, i) => {
      const answer = this.handle(entry)
      if (typeof answer === 'string' || answer === undefined) batch.set(i, answer)
      else answer.then((text) => batch.set(i, text)).catch((error: unknown) => batch.set(i, this.internal(answerId(entry), error, 'batch answer')))
    })
  }

  /** Answer one entry: text now, a promise of text, or undefined for no answer (notifications). Never throws. */
  private handle(entry: FrameEntry): string | undefined | Promise<string | undefined> {
    switch (entry.type) {
      case 'drop':
        return undefined
      case 'reject':
        return this.fail(entry.id, entry.error)
      case 'call':
      case 'notify': {
        const id = entry.type === 'call' ? entry.id : undefined
        this.services.metrics.request(entry.call.method)
        if (this.draining) return id === undefined ? undefined : this.fail(id, circlesError('SHUTTING_DOWN'))
        if (this.inFlight >= this.services.limits.maxInFlight) {
          return id === undefined
            ? undefined
            : this.fail(
                id,
                circlesError('TOO_MANY_IN_FLIGHT', `At most ${this.services.limits.maxInFlight} requests may await an answer on one connection`, {
                  limit: this.services.limits.maxInFlight,
                }),
              )
        }
        this.inFlight++
        let result: string | undefined | Promise<string | undefined>
        try {
          result = this.call(entry.call, id)
        } catch (error) {
          result = this.internal(id, error, entry.call.method)
        }
        if (typeof result === 'string' || result === undefined) {
          this.done()
          return result
        }
        return result.then(
          (text) => {
            this.done()
            return text
          },
          (error: unknown) => {
            this.done()
            return this.internal(id, error, entry.call.method)
          },
        )
      }
    }
  }

  private done(): void {
    this.inFlight--
    // Deferred: the answer of the request that just finished is sent before the socket closes.
    if (this.inFlight === 0 && this.drained !== undefined) setImmediate(this.drained)
  }

  /** Refuse a request over a load limit; auth abuse also closes the socket. */
  private limited(error: CirclesError): never {
    this.services.metrics.limited(String(error.details?.['limit'] ?? 'unknown'))
    if (error.details?.['limit'] === 'failed_auth') this.closeAfterAnswer = { code: 'RATE_LIMITED', wsCode: closeCodeOf('RATE_LIMITED') }
    throw error
  }

  private call(call: Call, id: JsonRpcId | undefined): string | undefined | Promise<string | undefined> {
    switch (call.method) {
      case 'fetch_nonce': {
        const state = this.actor.getSnapshot()
        if (this.target.type === 'unknown') throw this.unknownCircle()
        if (state.matches({ open: 'authenticated' })) throw circlesError('ALREADY_AUTHENTICATED')
        if (state.matches({ open: 'verifying' })) throw circlesError('INVALID_REQUEST', 'An authenticate request is being verified')
        const refused = this.services.load.nonce(this.origin)
        if (refused !== undefined) this.limited(refused)
        const claimant = claimantOf(call.params)
        const { message, expiresAt } = issueSignInMessage(this.target.site, this.target.pubkey, claimant, this.services.limits.nonceTtlMs, Date.now())
        this.actor.send({ type: 'NONCE_ISSUED', claimant, nonce: message })
        return id === undefined ? undefined : encodeSuccess(id, `{"nonce":${JSON.stringify(message)},"expires_at":${expiresAt}}`)
      }
      case 'authenticate': {
        const state = this.actor.getSnapshot()
        if (this.target.type === 'unknown') throw this.unknownCircle()
        if (state.matches({ open: 'authenticated' })) throw circlesError('ALREADY_AUTHENTICATED')
        if (state.matches({ open: 'verifying' })) throw circlesError('INVALID_REQUEST', 'An authenticate request is being verified')
        const refused = this.services.load.authenticate(this.origin)
        if (refused !== undefined) this.limited(refused)
        const token = this.nextToken++
        return new Promise<string | undefined>((resolve) => {
          this.authWaiters.set(token, { id, resolve })
          this.actor.send({ type: 'AUTHENTICATE', requestId: token, claimant: claimantOf(call.params), signature: call.params.signature })
        })
      }
      case 'play': {
        if (this.target.type === 'unknown') throw this.unknownCircle()
        const { pubkey } = this.target
        const refused = this.services.load.play(this.caller, this.origin, pubkey)
        if (refused !== undefined) this.limited(refused)
        const started = performance.now()
        const { metrics, faults } = this.services
        const { script } = call.params
        return this.services
          .play(pubkey, {
            caller: this.caller,
            script,
            origin: this.origin,
            signal: this.dropped.signal,
            ...(call.params.timeout_ms === undefined ? {} : { timeoutMs: call.params.timeout_ms }),
          })
          .then(
            (played) => {
              metrics.play(played.outcome.code ?? 'ok', (performance.now() - started) / 1000)
              if (played.outcome.code !== null) metrics.error(played.outcome.code)
              if (faults.has('answer-throw') && script.includes(FAULT_MARKER)) throw new Error('fault injected: answer-throw')
              if (faults.has('answer-uncaught') && script.includes(FAULT_MARKER)) {
                setImmediate(() => {
                  throw new Error('fault injected: answer-uncaught')
                })
              }
              // A socket cut or closing meanwhile takes no answer: do not build one (up to the output limit).
              return id === undefined || !this.outbox.accepting ? undefined : encodePlayAnswer(id, played.outcome, played)
            },
            (error: unknown) => {
              metrics.play(isCirclesError(error) ? error.code : 'INTERNAL_ERROR', (performance.now() - started) / 1000)
              throw error
            },
          )
      }
      case 'subscribe': {
        if (this.target.type === 'unknown') throw this.unknownCircle()
        const result = this.subscribe(this.target.pubkey, call.params)
        if (result instanceof Promise) return result.then((done) => (id === undefined ? undefined : encodeSuccess(id, JSON.stringify(done))))
        return id === undefined ? undefined : encodeSuccess(id, JSON.stringify(result))
      }
      case 'unsubscribe': {
        const unsubscribed = this.unsubscribe(call.params.subscription)
        return id === undefined ? undefined : encodeSuccess(id, `{"unsubscribed":${unsubscribed}}`)
      }
    }
  }

  /** `subscribe`: a subscription of this socket to its target context, answered with its id and position. */
  private subscribe(pubkey: PublicKeyHex, params: MethodParams['subscribe']): Subscribed | Promise<Subscribed> {
    const { limits, subscriptions } = this.services
    if (this.subscriptions.size >= limits.maxSubscriptions) {
      throw circlesError('TOO_MANY_SUBSCRIPTIONS', `This connection holds ${limits.maxSubscriptions} subscriptions already`, {
        limit: 'socket',
        max: limits.maxSubscriptions,
      })
    }
    const refused = subscriptions.acquire(this.origin)
    if (refused !== undefined) throw refused
    const id = `s${this.nextSubscription++}`
    const filter = { ...(params.prefix === undefined ? {} : { prefix: params.prefix }), ...(params.topics === undefined ? {} : { topics: params.topics }) }
    const subscription = new SocketSubscription(id, this.caller, filter, {
      // Notifications go through the outbox after the answers sent before them, charged to the
      // send budgets like answers; what is held for an answer not out yet is charged too.
      notify: (text) => this.outbox.push(text),
      hold: (bytes) => (bytes > 0 ? this.account.charge(bytes) : this.account.credit(-bytes)),
      ended: (ended) => {
        if (this.subscriptions.get(ended.id) !== ended) return
        this.subscriptions.delete(ended.id)
        this.services.subscriptions.release(this.origin)
        if (this.subscriptions.size === 0) this.stopPinging()
      },
    })
    let accepted: ContextSubscription | Promise<ContextSubscription>
    try {
      accepted = this.services.subscribe(pubkey, subscription, params.after)
    } catch (error) {
      subscriptions.release(this.origin)
      throw error
    }
    const frame = this.frameSubscriptions
    const settle = (done: ContextSubscription): Subscribed => {
      subscription.cancel = done.cancel
      this.subscriptions.set(id, subscription)
      frame?.push(subscription)
      if (this.pingTimer === undefined) this.pingTimer = this.clock.setTimeout(this.onPingTimer, limits.pingIntervalMs)
      return { subscription: id, epoch: done.epoch, seq: done.seq }
    }
    if (!(accepted instanceof Promise)) return settle(accepted)
    // Answered by another node: the socket may have closed meanwhile.
    return accepted.then(
      (done) => {
        if (!this.outbox.accepting) {
          subscription.discard()
          done.cancel()
          subscriptions.release(this.origin)
          return { subscription: id, epoch: done.epoch, seq: done.seq }
        }
        return settle(done)
      },
      (error: unknown) => {
        subscription.discard()
        subscriptions.release(this.origin)
        throw error
      },
    )
  }

  private unsubscribe(id: string): boolean {
    const subscription = this.subscriptions.get(id)
    if (subscription === undefined) return false
    this.subscriptions.delete(id)
    this.release(subscription)
    if (this.subscriptions.size === 0) this.stopPinging()
    return true
  }

  private release(subscription: SocketSubscription): void {
    subscription.discard()
    this.services.subscriptions.release(this.origin)
  }

  /** A socket with subscriptions is pinged: its pongs count as activity (see onIdleTimer). */
  private readonly onPingTimer = (): void => {
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping()
    this.pingTimer = this.clock.setTimeout(this.onPingTimer, this.services.limits.pingIntervalMs)
  }

  private stopPinging(): void {
    this.clock.clearTimeout(this.pingTimer)
    this.pingTimer = undefined
  }

  private unknownCircle(): CirclesError {
    const path = this.target.type === 'unknown' ? this.target.path : ''
    return circlesError('UNKNOWN_CIRCLE', `No circle is served at "${path.slice(0, 140)}" on this port`)
  }
}

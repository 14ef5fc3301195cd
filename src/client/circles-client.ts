import { isPositiveInteger } from '../config/positive-integer.js'
import { DEFAULTS } from '../config/defaults.js'
import { closeCodeOf, WS_CLOSE } from '../errors/index.js'
import { normalizePublicKey, recoverPersonalSigner, type PublicKeyHex } from '../identity/portable.js'
import type { ClaimParams, MethodName, MethodParams, MethodResults, PlayResult } from '../protocol/messages.js'
import { checkInfo, checkResult, readFrame, type CircleInfo } from './answers.js'
import { CirclesClientBuilder } from './client-builder.js'
import {
  ConnectError,
  ConnectionClosedError,
  InvalidOptionError,
  MalformedAnswerError,
  RequestAbortedError,
  RequestTimeoutError,
  type CirclesClientError,
} from './errors.js'
import { reconnectDelayMs, type ResolvedReconnectPolicy } from './reconnect.js'
import { checkSignInMessage, signerAddress, signInTemplate } from './sign-in-check.js'
import type { Signer } from './signer.js'
import { ClientSubscriptions, readNotification, type LiveHandler, type SubscribeFilter, type Unsubscribe } from './subscriptions.js'
import { resolveWebSocket, WS_OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket.js'

/** How long a request waits for its answer unless told otherwise. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000

/**
 * The close code of a node that refuses the connection itself (failed authentication, a slow
 * consumer, …): the error registry's, the same for each of those errors.
 */
const REFUSED = closeCodeOf('INVALID_CREDENTIALS')

/**
 * Where a client is: `idle` (built, not connected), `connecting`, `open` (anonymous),
 * `authenticated`, `reconnecting` (the connection dropped; requests wait), `closed` (for good).
 */
export type ClientState = 'idle' | 'connecting' | 'open' | 'authenticated' | 'reconnecting' | 'closed'

/** What {@link CirclesClientBuilder.build} passes on; validated there. */
export interface ClientOptions {
  readonly url: string
  readonly signer?: Signer
  readonly timeoutMs: number
  readonly reconnect?: ResolvedReconnectPolicy
  readonly WebSocket?: WebSocketConstructor
  /** The context a `/` URL talks to, when the caller knows it: sign-in messages must name it. */
  readonly contextKey?: PublicKeyHex
}

/** Per-request options: how long to wait for the answer, and a signal to stop waiting. */
export interface RequestOptions {
  /** Milliseconds to wait for the answer (default: the client's `withTimeout`). */
  readonly timeoutMs?: number
  /** Aborting rejects the request with ABORTED; one already sent may still run on the node. */
  readonly signal?: AbortSignal
}

export interface PlayOptions extends RequestOptions {
  /** The script's own time limit on the node (`timeout_ms`); it can only lower the circle's. */
  readonly scriptTimeoutMs?: number
}

interface Pending {
  readonly method: MethodName
  resolve(value: unknown): void
  reject(error: Error): void
}

interface Gate {
  readonly promise: Promise<void>
  resolve(): void
  reject(error: Error): void
}

function gate(): Gate {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  // Nobody may be waiting when it fails; that is not an unhandled rejection.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

function errorDetail(event: unknown): string {
  const e = event as { message?: unknown; error?: { message?: unknown } } | undefined
  const message = e?.message ?? e?.error?.message
  return typeof message === 'string' ? message : ''
}

/** `GET /info` of the port a WebSocket URL points at. */
function infoUrl(wsUrl: string): string {
  const url = new URL(wsUrl)
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:'
  url.pathname = '/info'
  url.search = ''
  url.hash = ''
  return url.href
}

/**
 * A client for a Circle node, in Node (over `ws`) and in browsers (the global WebSocket):
 * connect, authenticate with a key or a wallet, run scripts. Many requests may be in flight on
 * one connection; answers are matched by id and checked before use, and every failure is a
 * {@link CirclesClientError} whose `code` says what happened.
 *
 * @example
 * const client = CirclesClient.builder('ws://127.0.0.1:8090/').withKey(secretKeyHex).build()
 * await client.connect()
 * await client.authenticate()
 * const { output, logs } = await client.play('load_data("profile")')
 * await client.close()
 *
 * @example
 * // Keys that stay in a wallet, a deadline per request, reconnection with back-off:
 * const client = CirclesClient.builder(url)
 *   .withKey(ethersSigner(wallet))
 *   .withTimeout(5_000)
 *   .withReconnect({ maxAttempts: 5 })
 *   .build()
 */
export class CirclesClient {
  /** The WebSocket URL: `ws(s)://host:port/` or `ws(s)://host:port/<circle_pubkey>`. */
  readonly url: string
  /** The key this client is authenticated as (canonical compressed hex), once it is. */
  publicKey: string | undefined
  private readonly options: ClientOptions
  private socket: WebSocketLike | undefined
  private current: ClientState = 'idle'
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private connecting: Promise<void> | undefined
  /** The signer the connection authenticated with: reconnecting authenticates with it again. */
  private signedInWith: Signer | undefined
  /** Open while reconnecting: requests made meanwhile wait on it. */
  private reconnected: Gate | undefined
  private wakeReconnect: (() => void) | undefined
  private closedBy: ConnectionClosedError | undefined
  private readonly listeners = new Set<(state: ClientState) => void>()
  /** Requests made while the socket was closing, routed again once the close is handled. */
  private afterDrop: (() => void)[] = []
  private readonly live = new ClientSubscriptions((method, params, onAnswer) => this.send(method, params, {}, false, onAnswer))

  /** Start building a client for `url`; see {@link CirclesClientBuilder}. */
  static builder(url: string): CirclesClientBuilder {
    return new CirclesClientBuilder(url)
  }

  /** Use {@link CirclesClient.builder}. */
  constructor(options: ClientOptions) {
    this.options = options
    this.url = options.url
  }

  get state(): ClientState {
    return this.current
  }

  /** Call `listener` on every state change; returns a function that unsubscribes. */
  onStateChange(listener: (state: ClientState) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private setState(state: ClientState): void {
    if (state === this.current) return
    this.current = state
    for (const listener of [...this.listeners]) listener(state)
  }

  /**
   * Open the connection. Rejects with CONNECT_FAILED when the node cannot be reached in time.
   * A client that is already open (or reconnecting) resolves at once.
   */
  async connect(options: RequestOptions = {}): Promise<void> {
    if (this.current === 'closed') throw this.closedBy ?? new ConnectionClosedError(WS_CLOSE.NORMAL, '', 'the client is closed')
    if (this.current !== 'idle' && this.current !== 'connecting') return
    if (this.connecting === undefined) {
      this.setState('connecting')
      this.connecting = this.openSocket('connect', options).then(
        (socket) => {
          this.connecting = undefined
          if ((this.current as ClientState) === 'closed') {
            socket.close(WS_CLOSE.NORMAL)
            throw this.closedBy!
          }
          this.attach(socket)
          this.setState('open')
        },
        (error: unknown) => {
          this.connecting = undefined
          if (this.current === 'connecting') this.setState('idle')
          throw error
        },
      )
    }
    await this.connecting
  }

  private openSocket(method: string, options: RequestOptions): Promise<WebSocketLike> {
    const Ctor = resolveWebSocket(this.options.WebSocket)
    if (Ctor === undefined) return Promise.reject(new ConnectError(this.url, 'no WebSocket implementation here; give one with withWebSocket()'))
    if (options.signal?.aborted) return Promise.reject(new RequestAbortedError(method, options.signal.reason))
    let socket: WebSocketLike
    try {
      socket = new Ctor(this.url)
    } catch (error) {
      return Promise.reject(new ConnectError(this.url, (error as Error).message))
    }
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs
    return new Promise<WebSocketLike>((resolve, reject) => {
      let settled = false
      const settle = (error?: CirclesClientError) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (error === undefined) return resolve(socket)
        try {
          socket.close()
        } catch {
          // Not open yet: nothing to close.
        }
        reject(error)
      }
      const timer = setTimeout(() => settle(new ConnectError(this.url, `no connection within ${timeoutMs} ms`)), timeoutMs)
      const onAbort = () => settle(new RequestAbortedError(method, options.signal?.reason))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      socket.addEventListener('open', () => settle())
      socket.addEventListener('error', (event) => settle(new ConnectError(this.url, errorDetail(event))))
      socket.addEventListener('close', (event: { code: number }) => settle(new ConnectError(this.url, `closed (${event.code})`)))
    })
  }

  private attach(socket: WebSocketLike): void {
    this.socket = socket
    // Events of a socket this client has moved on from are ignored.
    socket.addEventListener('message', (event: { data: unknown }) => {
      if (this.socket === socket) this.onFrame(socket, event.data)
    })
    socket.addEventListener('close', (event: { code: number; reason?: unknown }) => {
      if (this.socket === socket) this.onDrop(event.code, String(event.reason ?? ''))
    })
  }

  private onFrame(socket: WebSocketLike, data: unknown): void {
    if (typeof data !== 'string') return this.protocolFailure(socket, 'a binary frame')
    const answers = readFrame(data)
    // One entry that is not a response makes the whole frame, and the connection, untrustworthy.
    const garbage = answers.find((answer) => answer.type === 'garbage')
    if (garbage?.type === 'garbage') return this.protocolFailure(socket, garbage.what)
    for (const answer of answers) {
      if (answer.type === 'garbage') continue
      if (answer.type === 'notification') {
        const notification = readNotification(answer.method, answer.params)
        if (typeof notification === 'string') return this.protocolFailure(socket, notification)
        if (notification !== undefined) this.live.receive(notification)
        continue
      }
      // id null: the node could not read a request of ours (a frame over its size limit, say).
      // It cannot say which; all that are waiting get the error, and the node closes after.
      if (answer.id === null && answer.type === 'error') {
        this.rejectAll(answer.error)
        continue
      }
      // Unknown ids are late answers to requests that timed out or were aborted: dropped.
      const waiter = typeof answer.id === 'number' ? this.pending.get(answer.id) : undefined
      if (waiter === undefined) continue
      this.pending.delete(answer.id as number)
      if (answer.type === 'error') {
        waiter.reject(answer.error)
        continue
      }
      const checked = checkResult(waiter.method, answer.result)
      if (checked instanceof MalformedAnswerError) waiter.reject(checked)
      else waiter.resolve(checked)
    }
  }

  /** The node sent something no request can be matched with: nothing on this connection can be trusted. */
  private protocolFailure(socket: WebSocketLike, what: string): void {
    this.rejectAll(new MalformedAnswerError(what))
    try {
      socket.close(WS_CLOSE.PROTOCOL_ERROR, 'malformed answer')
    } catch {
      // Browsers let a page send only 1000 and 3000-4999.
      socket.close(WS_CLOSE.NORMAL, 'malformed answer')
    }
  }

  private rejectAll(error: Error): void {
    const waiters = [...this.pending.values()]
    this.pending.clear()
    for (const waiter of waiters) waiter.reject(error)
  }

  private onDrop(code: number, reason: string): void {
    this.socket = undefined
    this.live.dropped()
    const dropped = new ConnectionClosedError(
      code,
      reason,
      `connection closed (${code}${reason ? ` ${reason}` : ''}) before the answer came; the request may have run on the node and is not sent again`,
    )
    this.rejectAll(dropped)
    this.decideAfterDrop(code, dropped)
    const waiting = this.afterDrop
    this.afterDrop = []
    for (const route of waiting) route()
  }

  private decideAfterDrop(code: number, dropped: ConnectionClosedError): void {
    // Dropped while reconnecting (during re-authentication): the reconnect loop carries on.
    if (this.current === 'reconnecting' || this.current === 'closed') return
    // 1008: the node refused this connection (failed authentication, slow consumer); coming
    // back would only be refused again, or come back without the caller's identity.
    if (this.options.reconnect === undefined || code === REFUSED) {
      this.closedBy = dropped
      this.setState('closed')
      return
    }
    this.setState('reconnecting')
    this.reconnected = gate()
    void this.reconnect(this.options.reconnect, dropped)
  }

  private async reconnect(policy: ResolvedReconnectPolicy, cause: ConnectionClosedError): Promise<void> {
    const waiting = this.reconnected!
    let fatal: Error | undefined
    for (let attempt = 1; attempt <= policy.maxAttempts && fatal === undefined; attempt++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, reconnectDelayMs(policy, attempt))
        this.wakeReconnect = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wakeReconnect = undefined
      if (this.current !== 'reconnecting') return
      let socket: WebSocketLike
      try {
        socket = await this.openSocket('reconnect', {})
      } catch {
        continue
      }
      if (this.current !== 'reconnecting') {
        socket.close(WS_CLOSE.NORMAL)
        return
      }
      this.attach(socket)
      if (this.signedInWith !== undefined) {
        try {
          await this.signIn(this.signedInWith, {}, true)
        } catch (error) {
          // Refused (an error answer, or a 1008 close): trying again would not help.
          if (!(error instanceof ConnectionClosedError) || error.closeCode === REFUSED) fatal = error as Error
          socket.close(WS_CLOSE.NORMAL)
          this.socket = undefined
          continue
        }
      }
      this.reconnected = undefined
      this.setState(this.signedInWith === undefined ? 'open' : 'authenticated')
      waiting.resolve()
      this.live.resume()
      return
    }
    if (this.current !== 'reconnecting') return
    this.closedBy = new ConnectionClosedError(
      cause.closeCode,
      cause.reason,
      fatal === undefined
        ? `connection lost (${cause.closeCode}) and ${policy.maxAttempts} reconnect attempt(s) failed`
        : `connection lost (${cause.closeCode}) and authenticating again failed: ${fatal.message}`,
    )
    this.reconnected = undefined
    this.setState('closed')
    waiting.reject(this.closedBy)
  }

  /**
   * Send one request and wait for its checked answer. Error answers reject with
   * {@link RpcError}; see {@link RequestOptions} for the deadline and the signal.
   */
  request<M extends MethodName>(method: M, params: MethodParams[M], options: RequestOptions = {}): Promise<MethodResults[M]> {
    return this.send(method, params, options, false)
  }

  /** `onAnswer` sees the checked result as it is read, before any later frame of the connection is. */
  private send<M extends MethodName>(
    method: M,
    params: MethodParams[M],
    options: RequestOptions,
    reconnecting: boolean,
    onAnswer?: (result: MethodResults[M]) => void,
  ): Promise<MethodResults[M]> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs
    if (!isPositiveInteger(timeoutMs)) {
      return Promise.reject(new InvalidOptionError(`${method}: timeoutMs must be a positive integer`))
    }
    if (options.signal?.aborted) return Promise.reject(new RequestAbortedError(method, options.signal.reason))
    return new Promise<MethodResults[M]>((resolve, reject) => {
      let id: number | undefined
      let done = false
      const finish = (): boolean => {
        if (done) return false
        done = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (id !== undefined) this.pending.delete(id)
        return true
      }
      const fail = (error: Error) => finish() && reject(error)
      const timer = setTimeout(() => fail(new RequestTimeoutError(method, timeoutMs)), timeoutMs)
      const onAbort = () => fail(new RequestAbortedError(method, options.signal?.reason))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      const dispatch = () => {
        if (done) return
        const socket = this.socket
        if (socket === undefined || socket.readyState !== WS_OPEN) {
          // Closing: once the close is handled the request fails with its reason, or waits for
          // the reconnection. It was not sent, so it may be sent then.
          if (socket !== undefined) return void this.afterDrop.push(route)
          return fail(this.closedBy ?? new ConnectionClosedError(WS_CLOSE.ABNORMAL, '', `${method}: not connected`))
        }
        id = this.nextId++
        this.pending.set(id, {
          method,
          resolve: (value) => {
            if (!finish()) return
            onAnswer?.(value as MethodResults[M])
            resolve(value as MethodResults[M])
          },
          reject: fail,
        })
        socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
      }
      const route = () => {
        switch (this.current) {
          case 'idle':
            return fail(new ConnectionClosedError(WS_CLOSE.ABNORMAL, '', `${method}: not connected; call connect() first`))
          case 'closed':
            return fail(this.closedBy ?? new ConnectionClosedError(WS_CLOSE.NORMAL, '', 'the client is closed'))
          case 'connecting':
            return void this.connecting!.then(dispatch, fail)
          case 'reconnecting':
            return reconnecting ? dispatch() : void this.reconnected!.promise.then(dispatch, fail)
          default:
            return dispatch()
        }
      }
      route()
    })
  }

  /**
   * Authenticate this connection: fetch the sign-in message, check it, have the signer sign it
   * (EIP-191), send the signature. Uses the key given to `withKey` unless `options.signer` is
   * given; resolves to the public key the connection is now authenticated as. On failure the
   * node closes the connection.
   *
   * The message must be the one this client expects for the URL it dialled — its domain, URI,
   * the signer's address, the context key when known (a `/<key>` path, or `withContextKey`), and
   * times within 5 minutes of this clock — or the client refuses with SIGN_IN_MISMATCH and the
   * signer is never asked: a server relaying another node's message, or sending any other
   * text, gets no signature.
   */
  async authenticate(options: RequestOptions & { readonly signer?: Signer } = {}): Promise<string> {
    const signer = options.signer ?? this.options.signer
    if (signer === undefined) throw new InvalidOptionError('authenticate: no key; give one with withKey(…) or authenticate({ signer })')
    return this.signIn(signer, options, false)
  }

  private async signIn(signer: Signer, options: RequestOptions, reconnecting: boolean): Promise<string> {
    let claim: ClaimParams
    if (signer.publicKey !== undefined) claim = { pubkey: signer.publicKey }
    else if (signer.address !== undefined) claim = { address: signer.address }
    else throw new InvalidOptionError('authenticate: the signer has neither a publicKey nor an address')
    const { nonce, expires_at: expiresAt } = await this.send('fetch_nonce', claim, options, reconnecting)
    const template = signInTemplate(this.url, signerAddress(signer), this.options.contextKey)
    const refused = checkSignInMessage(nonce, expiresAt, template, Date.now(), DEFAULTS.SIGN_IN_CLOCK_SKEW_MS)
    if (refused !== undefined) throw refused
    const signature = await signer.signMessage(nonce)
    await this.send('authenticate', { ...claim, signature }, options, reconnecting)
    // The node accepted the signature, so it recovers; with an address it is the only way to the key.
    const recovered = recoverPersonalSigner(nonce, signature)
    this.publicKey = signer.publicKey !== undefined ? normalizePublicKey(signer.publicKey) : recovered.ok ? recovered.publicKey : undefined
    this.signedInWith = signer
    if (!reconnecting) this.setState('authenticated')
    return this.publicKey ?? ''
  }

  /**
   * Run a script in the connection's circle.
   *
   * @example
   * const { output, result, logs, timings } = await client.play('print("hi"); 1 + 2', { timeoutMs: 2_000 })
   * // output "3", result 3, logs ["hi"]
   */
  play(script: string, options: PlayOptions = {}): Promise<PlayResult> {
    const params = options.scriptTimeoutMs === undefined ? { script } : { script, timeout_ms: options.scriptTimeoutMs }
    return this.request('play', params, options)
  }

  /**
   * Watch the connection's circle: its committed changes under `prefix` and the events whose
   * topic starts with one of `topics` (neither: everything), as the circle's policy lets this
   * client (`subscribe` rule). Resolves once the node accepted, to a function that ends the
   * subscription and carries the position the node answered (`epoch`, `seq`: what to give
   * `after` to resume from there later); a refusal rejects (FORBIDDEN, AUTH_REQUIRED,
   * TOO_MANY_SUBSCRIPTIONS).
   *
   * The handler gets each notice in order. After a reconnect the subscription resumes from the
   * last notice it saw; when the node cannot tell what was missed, the handler gets `resync`
   * once the subscription is in place again: read again what you show (notices that follow may
   * already be in what you read — a `changed` notice carries the whole document, so applying it
   * again is harmless).
   *
   * @example
   * const stop = await client.subscribe({ prefix: 'posts/' }, (notice) => {
   *   if (notice.type === 'changed') show(notice.name, notice.value)
   *   if (notice.type === 'resync') reload()
   * })
   * await stop()
   */
  subscribe(filter: SubscribeFilter, handler: LiveHandler): Promise<Unsubscribe> {
    return this.live.add(filter, handler)
  }

  /**
   * `GET /info` of the port this client talks to: the circle's name, key, policy and limits.
   * Needs no connection.
   *
   * @example
   * const { name, public_key, policy, limits } = await client.info()
   */
  async info(options: RequestOptions = {}): Promise<CircleInfo> {
    const url = infoUrl(this.url)
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs
    if (options.signal?.aborted) throw new RequestAbortedError('info', options.signal.reason)
    const controller = new AbortController()
    let failure: Error | undefined
    const stop = (error: Error) => {
      failure ??= error
      controller.abort()
    }
    const timer = setTimeout(() => stop(new RequestTimeoutError('info', timeoutMs)), timeoutMs)
    const onAbort = () => stop(new RequestAbortedError('info', options.signal?.reason))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      let response: Response
      try {
        response = await fetch(url, { signal: controller.signal, headers: { accept: 'application/json' } })
      } catch (error) {
        throw failure ?? new ConnectError(url, (error as Error).message)
      }
      let body: unknown
      try {
        body = await response.json()
      } catch {
        throw failure ?? new MalformedAnswerError(`info: HTTP ${response.status}, not JSON`)
      }
      if (response.status !== 200) throw new MalformedAnswerError(`info: HTTP ${response.status}`)
      const info = checkInfo(body)
      if (info instanceof MalformedAnswerError) throw info
      return info
    } finally {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Close the connection for good (no reconnection). Requests still waiting reject with
   * CONNECTION_CLOSED. Resolves once the socket has closed.
   */
  close(): Promise<void> {
    if (this.current === 'closed' && this.socket === undefined) return Promise.resolve()
    const closed = new ConnectionClosedError(WS_CLOSE.NORMAL, 'closed by the client', 'the client was closed before the answer came')
    this.closedBy ??= closed
    this.live.clear()
    this.setState('closed')
    this.wakeReconnect?.()
    this.reconnected?.reject(closed)
    this.reconnected = undefined
    this.rejectAll(closed)
    const waiting = this.afterDrop
    this.afterDrop = []
    for (const route of waiting) route()
    const socket = this.socket
    this.socket = undefined
    if (socket === undefined || socket.readyState === 3) return Promise.resolve()
    return new Promise<void>((resolve) => {
      socket.addEventListener('close', () => resolve())
      socket.close(WS_CLOSE.NORMAL)
    })
  }
}

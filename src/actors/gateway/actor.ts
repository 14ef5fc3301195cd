import { createActor, type Actor } from 'xstate'
import type { WebSocket } from 'ws'
import { asCirclesError, circlesError, type CirclesError } from '../../errors/index.js'
import { createNonce, type Claimant, type PublicKeyHex } from '../../identity/index.js'
import { errorResponse, parseFrame, type Call, type ClaimParams, type FrameEntry, type FrameLimits, type JsonRpcId } from '../../protocol/index.js'
import type { Metrics } from '../../metrics/index.js'
import type { PeerHost, PlayOutcome } from '../peer/index.js'
import type { Verifier } from '../../verifier/index.js'
import { gatewayMachine, type GatewayMachine } from './machine.js'

export interface GatewayLimits extends FrameLimits {
  readonly maxInFlight: number
  /** Bytes queued for a socket that does not read, past which it is cut (SLOW_CONSUMER). */
  readonly maxBufferedBytes: number
  readonly nonceTtlMs: number
  readonly idleTimeoutMs: number
}

export interface GatewayServices {
  readonly peers: PeerHost
  readonly verifier: Verifier
  readonly metrics: Metrics
  readonly limits: GatewayLimits
}

/** Which circle a connection talks to: a hosted peer, or a path that names none. */
export type GatewayTarget = { readonly type: 'circle'; readonly pubkey: PublicKeyHex } | { readonly type: 'unknown'; readonly path: string }

const BINARY_REFUSED = circlesError('INVALID_REQUEST', 'Invalid Request: binary frames are not accepted; send text frames')

function encodeSuccess(id: JsonRpcId, resultJson: string): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`
}

/** The wire form `{ pubkey }` / `{ address }` as the tagged claim the auth machine compares. */
function claimantOf(params: ClaimParams): Claimant {
  return params.address === undefined ? { type: 'pubkey', pubkey: params.pubkey } : { type: 'address', address: params.address }
}

function ms(value: number): number {
  return Math.round(value * 1000) / 1000
}

/** The `play` result as JSON text; the completion value is spliced in as the sandbox produced it. */
function encodePlay(o: PlayOutcome): string {
  return (
    `{"output":${JSON.stringify(o.output)},"result":${o.json},"logs":${JSON.stringify(o.logs)}` +
    `${o.logsTruncated ? ',"logs_truncated":true' : ''},"task_id":"${o.taskId}",` +
    `"timings":{"queued_ms":${ms(o.queuedMs)},"run_ms":${ms(o.runMs)},"cpu_ms":${ms(o.cpuMs)}}}`
  )
}

/**
 * One WebSocket connection: JSON-RPC in, answers out, with the auth lifecycle in
 * {@link gatewayMachine}. `play` is the hot path and does not go through the machine: it reads
 * the caller the machine established.
 */
export class GatewayConnection {
  private readonly socket: WebSocket
  private readonly target: GatewayTarget
  private readonly services: GatewayServices
  private readonly actor: Actor<GatewayMachine>
  private readonly idleTimer: NodeJS.Timeout
  private caller: PublicKeyHex | '' = ''
  /** Mirrors the machine being in `open` (read on every frame). */
  private open = true
  private inFlight = 0
  private draining = false
  private drained: (() => void) | undefined
  private nextToken = 1
  /** authenticate requests awaiting the machine, by internal token. */
  private readonly authWaiters = new Map<number, { id: JsonRpcId | undefined; resolve: (text: string | undefined) => void }>()

  constructor(socket: WebSocket, target: GatewayTarget, services: GatewayServices) {
    this.socket = socket
    this.target = target
    this.services = services
    const verifier = services.verifier
    this.actor = createActor(gatewayMachine, {
      input: {
        nonceTtlMs: services.limits.nonceTtlMs,
        verify: ({ nonce, signature, claimant }) => verifier.verify(nonce, signature, claimant),
      },
    })
    this.actor.subscribe((snapshot) => this.onTransition(snapshot))
    this.actor.start()
    this.idleTimer = setTimeout(() => this.actor.send({ type: 'IDLE' }), services.limits.idleTimeoutMs)
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary))
    socket.on('close', () => this.onClose())
    socket.on('error', () => socket.terminate())
    services.metrics.connections.inc()
  }

  /** Requests being handled. */
  get pending(): number {
    return this.inFlight
  }

  /** Stop taking requests, wait for those in flight (at most `timeoutMs`), then close with 1001. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true
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
    clearTimeout(this.idleTimer)
    this.actor.send({ type: 'SOCKET_CLOSED' })
    this.actor.stop()
    for (const waiter of this.authWaiters.values()) waiter.resolve(undefined)
    this.authWaiters.clear()
  }

  private onTransition(snapshot: ReturnType<Actor<GatewayMachine>['getSnapshot']>): void {
    const { context } = snapshot
    this.open = snapshot.matches('open')
    if (snapshot.matches({ open: 'authenticated' }) && this.caller === '' && context.caller !== null) {
      this.caller = context.caller
      this.services.metrics.authentications.inc({ result: 'ok' })
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
        this.authWaiters.delete(close.requestId as number)
        this.services.metrics.authentications.inc({ result: close.code })
        this.services.metrics.errors.inc({ code: close.code })
        if (waiter.id !== undefined) this.socket.send(JSON.stringify(errorResponse(waiter.id, circlesError(close.code))))
        waiter.resolve(undefined)
      }
      this.socket.close(close.wsCode, close.code)
    }
  }

  private send(text: string | undefined): void {
    if (text === undefined || this.socket.readyState !== this.socket.OPEN) return
    this.socket.send(text)
    // A client that sends requests but never reads the answers would have the node hold them
    // all. Past the bound the socket is cut: a close frame could not get through anyway.
    if (this.socket.bufferedAmount > this.services.limits.maxBufferedBytes) {
      this.services.metrics.errors.incLabel('code', 'SLOW_CONSUMER')
      this.socket.terminate()
    }
  }

  private fail(id: JsonRpcId, error: CirclesError): string {
    this.services.metrics.errors.incLabel('code', error.code)
    return JSON.stringify(errorResponse(id, error))
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    this.idleTimer.refresh()
    if (!this.open) return
    if (isBinary) {
      this.send(this.fail(null, BINARY_REFUSED))
      return
    }
    const frame = parseFrame(data, this.services.limits)
    if (frame.type === 'single') {
      const answer = this.handle(frame.entry)
      if (typeof answer === 'string' || answer === undefined) this.send(answer)
      else void answer.then((text) => this.send(text))
      return
    }
    const answers = frame.entries.map((entry) => this.handle(entry))
    void Promise.all(answers).then((texts) => {
      const present = texts.filter((t): t is string => t !== undefined)
      if (present.length > 0) this.send(`[${present.join(',')}]`)
    })
  }

  /** Answer one entry: text now, a promise of text, or undefined for no answer (notifications). */
  private handle(entry: FrameEntry): string | undefined | Promise<string | undefined> {
    switch (entry.type) {
      case 'drop':
        return undefined
      case 'reject':
        return this.fail(entry.id, entry.error)
      case 'call':
      case 'notify': {
        const id = entry.type === 'call' ? entry.id : undefined
        this.services.metrics.requests.incLabel('method', entry.call.method)
        if (this.draining) return id === undefined ? undefined : this.fail(id, circlesError('SHUTTING_DOWN'))
        if (this.inFlight >= this.services.limits.maxInFlight) {
          return id === undefined
            ? undefined
            : this.fail(id, circlesError('TOO_MANY_IN_FLIGHT', `At most ${this.services.limits.maxInFlight} requests may await an answer on one connection`, {
                limit: this.services.limits.maxInFlight,
              }))
        }
        this.inFlight++
        let result: string | undefined | Promise<string | undefined>
        try {
          result = this.call(entry.call, id)
        } catch (error) {
          result = id === undefined ? undefined : this.fail(id, asCirclesError(error))
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
            return id === undefined ? undefined : this.fail(id, asCirclesError(error))
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

  private call(call: Call, id: JsonRpcId | undefined): string | undefined | Promise<string | undefined> {
    switch (call.method) {
      case 'fetch_nonce': {
        const state = this.actor.getSnapshot()
        if (this.target.type === 'unknown') throw this.unknownCircle()
        if (state.matches({ open: 'authenticated' })) throw circlesError('ALREADY_AUTHENTICATED')
        if (state.matches({ open: 'verifying' })) throw circlesError('INVALID_REQUEST', 'An authenticate request is being verified')
        const nonce = createNonce()
        const expiresAt = Math.floor((Date.now() + this.services.limits.nonceTtlMs) / 1000)
        this.actor.send({ type: 'NONCE_ISSUED', claimant: claimantOf(call.params), nonce })
        return id === undefined ? undefined : encodeSuccess(id, `{"nonce":${JSON.stringify(nonce)},"expires_at":${expiresAt}}`)
      }
      case 'authenticate': {
        const state = this.actor.getSnapshot()
        if (this.target.type === 'unknown') throw this.unknownCircle()
        if (state.matches({ open: 'authenticated' })) throw circlesError('ALREADY_AUTHENTICATED')
        if (state.matches({ open: 'verifying' })) throw circlesError('INVALID_REQUEST', 'An authenticate request is being verified')
        const token = this.nextToken++
        return new Promise<string | undefined>((resolve) => {
          this.authWaiters.set(token, { id, resolve })
          this.actor.send({ type: 'AUTHENTICATE', requestId: token, claimant: claimantOf(call.params), signature: call.params.signature })
        })
      }
      case 'play': {
        if (this.target.type === 'unknown') throw this.unknownCircle()
        const started = performance.now()
        const { metrics } = this.services
        return this.services.peers
          .play(this.target.pubkey, {
            caller: this.caller,
            script: call.params.script,
            ...(call.params.timeout_ms === undefined ? {} : { timeoutMs: call.params.timeout_ms }),
          })
          .then((outcome) => {
            metrics.playSeconds.observe((performance.now() - started) / 1000)
            return id === undefined ? undefined : encodeSuccess(id, encodePlay(outcome))
          })
      }
    }
  }

  private unknownCircle(): CirclesError {
    const path = this.target.type === 'unknown' ? this.target.path : ''
    return circlesError('UNKNOWN_CIRCLE', `No circle is served at "${path.slice(0, 140)}" on this port`)
  }
}

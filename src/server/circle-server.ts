import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import { GatewayConnection, type GatewayServices, type GatewayTarget } from '../actors/gateway/index.js'
import { normalizePublicKey, type PublicKeyHex } from '../identity/index.js'
import { METHOD_NAMES } from '../protocol/index.js'
import { Supervisor, type ChildHandle, type ExitReason, type SupervisorEvent } from '../supervisor/index.js'
import { isPlaygroundPath, servePlayground } from './playground.js'

/** What `GET /healthz` on a public port says: ok, degraded (cross-node work limited), or not serving. */
export interface PublicHealth {
  readonly status: 'ok' | 'degraded' | 'unavailable' | 'draining'
  /** The parts that are failing (names only: details are on the admin listener). */
  readonly failing?: readonly string[]
}

/** A certificate chain and its private key, PEM. */
export interface TlsCredentials {
  readonly cert: string | Buffer
  readonly key: string | Buffer
}

export interface CircleServerOptions {
  /** The circle this port serves at `/`. */
  readonly name: string
  readonly circle: PublicKeyHex
  readonly host: string
  readonly port: number
  readonly services: GatewayServices
  /** The `limits` member of `GET /info`. */
  readonly describeLimits: () => Record<string, number>
  readonly health: () => PublicHealth
  readonly version: string
  /** Cross-node facts for `GET /info`: whether the node is joined to others through Redis. */
  readonly cluster: () => { readonly clustered: boolean; readonly node_id?: string; readonly redis?: 'connected' | 'unreachable' }
  /** Events of the port's supervisor (for logs and metrics). */
  readonly onSupervisorEvent?: (event: SupervisorEvent) => void
  /** Serve https/wss on the port instead of http/ws. */
  readonly tls?: TlsCredentials
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(req(res).method === 'HEAD' ? undefined : text)
}

function req(res: ServerResponse): IncomingMessage {
  return (res as ServerResponse & { req: IncomingMessage }).req
}

const HEALTH_STATUS: Record<PublicHealth['status'], number> = { ok: 200, degraded: 200, unavailable: 503, draining: 503 }
let connectionIds = 0

/**
 * One listening port: WebSocket JSON-RPC at `/` (this port's circle) and `/<circle_pubkey>` (any
 * circle the node hosts), and plain HTTP: the playground page at `GET /`, `GET /info` and
 * `/healthz`. With `tls`, the same over https/wss.
 *
 * Each port is a supervisor (`rest_for_one`): the listener is its first child (`permanent`), and
 * every connection is a `temporary` child added when its socket is upgraded. Should the listener
 * fail, its connections are stopped with it and a new listener binds the same port.
 */
export class CircleServer implements ChildHandle {
  private readonly options: CircleServerOptions
  private readonly supervisor: Supervisor
  private readonly http: Server
  private readonly wss: WebSocketServer
  private readonly connections = new Set<GatewayConnection>()
  private readonly exitListeners: ((reason: ExitReason) => void)[] = []
  private accepting = true
  private boundPort: number | undefined

  private constructor(options: CircleServerOptions, supervisor: Supervisor) {
    this.options = options
    this.supervisor = supervisor
    const onRequest = (request: IncomingMessage, res: ServerResponse) => this.onRequest(request, res)
    this.http = options.tls === undefined ? createServer(onRequest) : createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.services.limits.maxFrameBytes,
      perMessageDeflate: false,
    })
    this.http.on('upgrade', (request, socket, head) => this.onUpgrade(request, socket, head))
    this.http.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    })
  }

  /**
   * The port's supervisor, with its listener started: resolves once the port is bound. `port()`
   * reads the bound port (the listener keeps it across restarts).
   */
  static async start(options: CircleServerOptions): Promise<{ supervisor: Supervisor; current: () => CircleServer }> {
    let current: CircleServer | undefined
    let port = options.port
    const supervisor: Supervisor = new Supervisor({
      id: `gateway:${options.name}`,
      flags: { strategy: 'rest_for_one', intensity: 3, periodMs: 60_000 },
      dynamic: { restart: 'temporary' },
      children: [
        {
          id: 'listener',
          restart: 'permanent',
          shutdown: 5_000,
          start: async () => {
            const server = new CircleServer({ ...options, port }, supervisor)
            port = await server.listen()
            current = server
            return server
          },
        },
      ],
      ...(options.onSupervisorEvent === undefined ? {} : { onEvent: options.onSupervisorEvent }),
    })
    await supervisor.start()
    return { supervisor, current: () => current! }
  }

  /** Start listening; resolves with the bound port. */
  private listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      this.http.once('error', onError)
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', onError)
        this.boundPort = (this.http.address() as AddressInfo).port
        // A listener that fails after it started is a child that died: its supervisor decides.
        this.http.on('error', (error: Error) => this.crash(error))
        resolve(this.boundPort)
      })
    })
  }

  get port(): number {
    return this.boundPort ?? this.options.port
  }

  /** WebSocket URL of this port's circle. */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host
    return `${this.options.tls === undefined ? 'ws' : 'wss'}://${host.includes(':') ? `[${host}]` : host}:${this.port}/`
  }

  get openConnections(): number {
    return this.connections.size
  }

  /** Refuse new connections from now on (the first step of a drain). */
  stopAccepting(): void {
    this.accepting = false
  }

  /** ChildHandle: stop listening (connections are stopped by the supervisor before this). */
  async stop(): Promise<void> {
    this.accepting = false
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()))
    this.http.closeAllConnections()
    await closed
    this.exit({ type: 'normal' })
  }

  kill(): void {
    this.accepting = false
    this.http.close()
    this.http.closeAllConnections()
    for (const client of this.wss.clients) client.terminate()
    this.exit({ type: 'error', error: new Error('listener killed') })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exitListeners.push(listener)
  }

  private exit(reason: ExitReason): void {
    for (const listener of this.exitListeners.splice(0)) listener(reason)
  }

  /** The listener failed: close it and report the exit (its supervisor restarts it). */
  private crash(error: Error): void {
    this.accepting = false
    this.http.close()
    this.http.closeAllConnections()
    this.exit({ type: 'error', error })
  }

  private target(path: string): GatewayTarget {
    const trimmed = path.replace(/^\/+|\/+$/g, '')
    if (trimmed === '') return { type: 'circle', pubkey: this.options.circle }
    let pubkey: PublicKeyHex
    try {
      pubkey = normalizePublicKey(trimmed)
    } catch {
      return { type: 'unknown', path: trimmed }
    }
    return this.options.services.reaches(pubkey) ? { type: 'circle', pubkey } : { type: 'unknown', path: trimmed }
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n')
      return
    }
    const address = request.socket.remoteAddress ?? ''
    const refused = this.options.services.load.connect(address)
    if (refused !== undefined) {
      this.options.services.metrics.limited('connections')
      const body = JSON.stringify({ code: 'RATE_LIMITED', message: refused.message, retry_after_ms: refused.details?.['retry_after_ms'] })
      socket.end(
        `HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
      return
    }
    const raw = (request.url ?? '/').split('?')[0] ?? '/'
    let path = raw
    try {
      path = decodeURIComponent(raw)
    } catch {
      // A malformed escape names no circle; the raw path is reported back as it came.
    }
    const target = this.target(path)
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new GatewayConnection(ws, target, this.options.services, address)
      const started = this.supervisor.startChildSync({ id: `conn-${++connectionIds}`, restart: 'temporary', shutdown: this.options.services.limits.drainTimeoutMs + 2_000, start: () => connection })
      if (!started.ok) {
        ws.close(1001, 'SHUTTING_DOWN')
        this.options.services.load.disconnected(address)
        return
      }
      this.connections.add(connection)
      ws.on('close', () => {
        this.connections.delete(connection)
        this.options.services.load.disconnected(address)
      })
    })
  }

  private onRequest(request: IncomingMessage, res: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return json(res, 405, { error: 'method not allowed' })
    }
    if (path !== undefined && isPlaygroundPath(path)) {
      void servePlayground(request, res, path, this.options.tls !== undefined)
      return
    }
    switch (path) {
      case '/info':
        return json(
          res,
          200,
          {
            name: this.options.name,
            public_key: this.options.circle,
            version: this.options.version,
            software: 'circles',
            protocol: 'JSON-RPC 2.0 over WebSocket',
            methods: METHOD_NAMES,
            policy: this.options.services.peers.policyOf(this.options.circle),
            limits: this.options.describeLimits(),
            cluster: this.options.cluster(),
          },
          { 'access-control-allow-origin': '*' },
        )
      case '/healthz': {
        const health: PublicHealth = this.accepting ? this.options.health() : { status: 'draining' }
        return json(res, HEALTH_STATUS[health.status], health)
      }
      case '/__fault/listener-crash':
        if (this.options.services.faults.has('listener-crash')) {
          json(res, 200, { crashing: true })
          setImmediate(() => this.crash(new Error('fault injected: listener-crash')))
          return
        }
        return json(res, 404, { error: 'not found' })
      default:
        return json(res, 404, { error: 'not found', endpoints: ['/', '/info', '/healthz', 'ws:///', 'ws:///<circle_pubkey>'] })
    }
  }
}

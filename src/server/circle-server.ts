import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { circlesError, closeCodeOf, toHttpError } from '../errors/index.js'
import { GatewayConnection, type GatewayServices, type GatewayTarget } from '../actors/gateway/index.js'
import { normalizePublicKey, signInUri, type PublicKeyHex } from '../identity/index.js'
import type { ClientAddress } from '../limits/index.js'
import { METHOD_NAMES } from '../protocol/index.js'
import { ExitListeners, Supervisor, type ChildHandle, type ExitReason, type SupervisorEvent } from '../supervisor/index.js'
import { bind } from './bind.js'
import { answerHttpError } from './http-error.js'
import { HostRules, refuseUpgrade, type Domain, type Site } from './host-rules.js'
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
  /** Names the port answers to besides loopback and the machine's addresses (see {@link HostRules}). */
  readonly domains: readonly Domain[]
  /** Browser origins that may open connections besides the port's own (`*`: any). */
  readonly allowedOrigins: readonly string[]
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

const ENDPOINTS = ['/', '/info', '/healthz', 'ws:///', 'ws:///<circle_pubkey>']

function notFound(res: ServerResponse): void {
  answerHttpError(res, 404, circlesError('NOT_FOUND', undefined, { endpoints: ENDPOINTS }))
}

function req(res: ServerResponse): IncomingMessage {
  return (res as ServerResponse & { req: IncomingMessage }).req
}

/** Answer an upgrade request with an HTTP refusal and close the socket. */
function endUpgrade(socket: Duplex, status: string, body = '', headers = ''): void {
  const type = body === '' ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n${headers}${type}\r\n${body}`)
}

/** The path of a request, percent-decoded (a malformed escape is kept as it came: it names no circle). */
function requestPath(request: IncomingMessage): string {
  const raw = (request.url ?? '/').split('?')[0] ?? '/'
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
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
  private readonly hostRules: HostRules
  /** The port's open connections: the one count of them (metrics, drain logs). */
  private readonly connections = new Set<GatewayConnection>()
  private readonly exits = new ExitListeners()
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
      // The port's open connections are counted once, in `connections`.
      clientTracking: false,
    })
    this.hostRules = new HostRules({ domains: options.domains, allowedOrigins: options.allowedOrigins, secure: options.tls !== undefined, port: () => this.port })
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
    const { host, port, name } = this.options
    const remedy = `give the circle another port in circles.json (0: any free port), or stop the process that holds it`
    // A listener that fails after it started is a child that died: its supervisor decides.
    const bound = bind(this.http, { host, port, listener: `the listener of circle "${name}"`, remedy }, (error) => this.crash(error))
    return bound.then((at) => {
      // Tests only (src/faults): the seam through which a test makes this listener fail.
      const off = this.options.services.faults.onTrigger('listener-crash', (target) => {
        if (target !== name) return false
        this.crash(new Error('fault injected: listener-crash'))
        return true
      })
      this.exits.add(off)
      return (this.boundPort = at)
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
    for (const connection of this.connections) connection.kill()
    this.exit({ type: 'error', error: new Error('listener killed') })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  private exit(reason: ExitReason): void {
    this.exits.exit(reason)
  }

  /** The listener failed: close it and report the exit (its supervisor restarts it). */
  private crash(error: Error): void {
    this.accepting = false
    this.http.close()
    this.http.closeAllConnections()
    this.exit({ type: 'error', error })
  }

  private target(path: string, site: Site): GatewayTarget {
    const trimmed = path.replace(/^\/+|\/+$/g, '')
    const signIn = (pathKey: PublicKeyHex | undefined) => ({ domain: site.authority, uri: signInUri(site.scheme, site.authority, pathKey) })
    if (trimmed === '') return { type: 'circle', pubkey: this.options.circle, site: signIn(undefined) }
    let pubkey: PublicKeyHex
    try {
      pubkey = normalizePublicKey(trimmed)
    } catch {
      return { type: 'unknown', path: trimmed }
    }
    return this.options.services.reaches(pubkey) ? { type: 'circle', pubkey, site: signIn(pubkey) } : { type: 'unknown', path: trimmed }
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { services } = this.options
    if (!this.accepting) return endUpgrade(socket, '503 Service Unavailable', JSON.stringify(toHttpError(circlesError('SHUTTING_DOWN'))))
    const admitted = this.hostRules.upgrade(request)
    if (!admitted.ok) {
      services.metrics.error(admitted.error.code)
      return refuseUpgrade(socket, admitted)
    }
    const header = request.headers['x-forwarded-for']
    const client = services.clients.of(request.socket.remoteAddress, Array.isArray(header) ? header.join(',') : header)
    const refused = services.load.connect(client.origin)
    if (refused !== undefined) {
      services.metrics.limited('connections')
      const body = JSON.stringify(toHttpError(refused))
      return endUpgrade(socket, '429 Too Many Requests', body, 'Retry-After: 1\r\n')
    }
    // The slot belongs to the raw socket: it comes back when the socket closes, whatever becomes
    // of the handshake (ws answers a malformed one 400 without calling back).
    socket.once('close', () => services.load.disconnected(client.origin))
    const target = this.target(requestPath(request), admitted.site)
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, target, client))
  }

  /** A completed upgrade: the connection is a temporary child of this port's supervisor. */
  private accept(ws: WebSocket, target: GatewayTarget, client: ClientAddress): void {
    const connection = new GatewayConnection(ws, target, this.options.services, client)
    const started = this.supervisor.startChildSync({ id: `conn-${++connectionIds}`, restart: 'temporary', shutdown: this.options.services.limits.drainTimeoutMs + 2_000, start: () => connection })
    if (!started.ok) {
      ws.close(closeCodeOf('SHUTTING_DOWN'), 'SHUTTING_DOWN')
      return
    }
    this.connections.add(connection)
    // Its exit, not its socket's close event: a connection that closed before this line is
    // told at once, and leaves the count.
    connection.onExit(() => this.connections.delete(connection))
  }

  private onRequest(request: IncomingMessage, res: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return answerHttpError(res, 405, circlesError('METHOD_NOT_ALLOWED', `${String(request.method).slice(0, 20)} is not served here: GET or HEAD`), { allow: 'GET, HEAD' })
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
          },
          { 'access-control-allow-origin': '*' },
        )
      case '/healthz': {
        const health: PublicHealth = this.accepting ? this.options.health() : { status: 'draining' }
        return json(res, HEALTH_STATUS[health.status], health)
      }
      default:
        return notFound(res)
    }
  }
}

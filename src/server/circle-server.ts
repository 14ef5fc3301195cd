import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import { GatewayConnection, type GatewayServices, type GatewayTarget } from '../actors/gateway/index.js'
import { normalizePublicKey, type PublicKeyHex } from '../identity/index.js'
import { isPlaygroundPath, servePlayground } from './playground.js'

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
  readonly version: string
  /** Serve https/wss on the port instead of http/ws. */
  readonly tls?: TlsCredentials
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/**
 * One listening port: WebSocket JSON-RPC at `/` (this port's circle) and `/<circle_pubkey>` (any
 * circle the node hosts), and plain HTTP: the playground page at `GET /`, `GET /info`,
 * `/healthz`, `/metrics`. With `tls`, the same over https/wss.
 */
export class CircleServer {
  private readonly options: CircleServerOptions
  private readonly http: Server
  private readonly wss: WebSocketServer
  private readonly connections = new Set<GatewayConnection>()
  private draining = false

  constructor(options: CircleServerOptions) {
    this.options = options
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res)
    this.http = options.tls === undefined ? createServer(onRequest) : createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.services.limits.maxFrameBytes,
      perMessageDeflate: false,
    })
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head))
    this.http.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    })
  }

  /** Start listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      this.http.once('error', onError)
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', onError)
        resolve((this.http.address() as AddressInfo).port)
      })
    })
  }

  get port(): number {
    return (this.http.address() as AddressInfo | null)?.port ?? this.options.port
  }

  /** WebSocket URL of this port's circle. */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host
    return `${this.options.tls === undefined ? 'ws' : 'wss'}://${host.includes(':') ? `[${host}]` : host}:${this.port}/`
  }

  get openConnections(): number {
    return this.connections.size
  }

  /** Stop accepting, let in-flight requests finish (up to `timeoutMs`), close sockets with 1001. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()))
    await Promise.all([...this.connections].map((c) => c.shutdown(timeoutMs)))
    // Sockets that ignore the close handshake are cut after a grace period.
    const grace = setTimeout(() => {
      for (const client of this.wss.clients) client.terminate()
      this.http.closeAllConnections()
    }, 1_000)
    this.http.closeIdleConnections()
    await closed
    clearTimeout(grace)
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
    return this.options.services.peers.has(pubkey) ? { type: 'circle', pubkey } : { type: 'unknown', path: trimmed }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.draining) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n')
      return
    }
    const raw = (req.url ?? '/').split('?')[0] ?? '/'
    let path = raw
    try {
      path = decodeURIComponent(raw)
    } catch {
      // A malformed escape names no circle; the raw path is reported back as it came.
    }
    const target = this.target(path)
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new GatewayConnection(ws, target, this.options.services)
      this.connections.add(connection)
      ws.on('close', () => this.connections.delete(connection))
    })
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return json(res, 405, { error: 'method not allowed' })
    }
    if (path !== undefined && isPlaygroundPath(path)) {
      void servePlayground(req, res, path, this.options.tls !== undefined)
      return
    }
    switch (path) {
      case '/info':
        // Public by design: pages served from elsewhere may read it.
        return json(res, 200, {
          name: this.options.name,
          public_key: this.options.circle,
          version: this.options.version,
          software: 'circles',
          protocol: 'JSON-RPC 2.0 over WebSocket',
          methods: ['fetch_nonce', 'authenticate', 'play'],
          policy: this.options.services.peers.policyOf(this.options.circle),
          limits: this.options.describeLimits(),
        }, { 'access-control-allow-origin': '*' })
      case '/healthz':
        return json(res, this.draining ? 503 : 200, { status: this.draining ? 'draining' : 'ok' })
      case '/metrics': {
        const text = this.options.services.metrics.render()
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        res.end(text)
        return
      }
      default:
        return json(res, 404, { error: 'not found', endpoints: ['/', '/info', '/healthz', '/metrics', 'ws:///', 'ws:///<circle_pubkey>'] })
    }
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { ExitListeners, type ChildHandle, type ExitReason } from '../supervisor/index.js'
import { circlesError } from '../errors/index.js'
import { bind } from './bind.js'
import { answerHttpError } from './http-error.js'
import { HostRules, refuseRequest, type Domain } from './host-rules.js'

export interface AdminServerOptions {
  readonly host: string
  readonly port: number
  /** Prometheus text and its content type. */
  readonly metrics: () => Promise<{ readonly text: string; readonly contentType: string }>
  /** The detailed health: status, the supervision tree, hosts, dependencies. */
  readonly health: () => { readonly status: string } & Record<string, unknown>
  /** Names the listener answers to besides loopback and the machine's addresses. */
  readonly domains: readonly Domain[]
}

const STATUS: Record<string, number> = { ok: 200, degraded: 200 }

/**
 * The node's admin listener — `GET /metrics` (Prometheus text) and `GET /healthz` (detailed) —
 * bound to 127.0.0.1 by default: per-host queue depths, pids and authentication failures are
 * for operators, not for every client of a public circle port. It answers only to the node's own
 * names ({@link HostRules}). A `permanent` child of the root supervisor.
 */
export class AdminServer implements ChildHandle {
  private readonly options: AdminServerOptions
  private readonly http: Server
  private readonly hostRules: HostRules
  private readonly exits = new ExitListeners()
  private boundPort: number | undefined

  constructor(options: AdminServerOptions) {
    this.options = options
    this.http = createServer((req, res) => void this.onRequest(req, res))
    // The same Host rule as the circle ports: a web page that made its own name resolve to this
    // machine (DNS rebinding) must not read /metrics.
    this.hostRules = new HostRules({ domains: options.domains, allowedOrigins: [], secure: false, port: () => this.port })
  }

  listen(): Promise<number> {
    const { host, port } = this.options
    const remedy = 'give it another port with --admin-port N (0: any free port), or run without it: --no-admin'
    const onLaterError = (error: Error) => {
      this.http.close()
      this.exit({ type: 'error', error })
    }
    return bind(this.http, { host, port, listener: 'the admin listener', remedy }, onLaterError).then((bound) => (this.boundPort = bound))
  }

  get port(): number {
    return this.boundPort ?? this.options.port
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host
    return `http://${host}:${this.port}`
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()))
    this.http.closeAllConnections()
    await closed
    this.exit({ type: 'normal' })
  }

  kill(): void {
    this.http.close()
    this.http.closeAllConnections()
    this.exit({ type: 'error', error: new Error('admin listener killed') })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  private exit(reason: ExitReason): void {
    this.exits.exit(reason)
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    const admitted = this.hostRules.host(req)
    if (!admitted.ok) return refuseRequest(res, admitted)
    try {
      if (req.method !== 'GET') {
        answerHttpError(res, 405, circlesError('METHOD_NOT_ALLOWED', `${String(req.method).slice(0, 20)} is not served here: GET`), { allow: 'GET' })
        return
      }
      if (path === '/metrics') {
        const { text, contentType } = await this.options.metrics()
        res.writeHead(200, { 'content-type': contentType }).end(text)
        return
      }
      if (path === '/healthz') {
        const health = this.options.health()
        const text = JSON.stringify(health)
        res.writeHead(STATUS[health.status] ?? 503, { 'content-type': 'application/json; charset=utf-8' }).end(text)
        return
      }
      answerHttpError(res, 404, circlesError('NOT_FOUND', undefined, { endpoints: ['/metrics', '/healthz'] }))
    } catch (error) {
      // The admin listener answers its operator: the message of what failed is theirs to read.
      answerHttpError(res, 500, circlesError('INTERNAL_ERROR', (error as Error).message))
    }
  }
}


import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Duplex } from 'node:stream'
import { circlesError, toHttpError, type CirclesError } from '../errors/index.js'
import { isLoopback } from '../limits/index.js'
import { answerHttpError } from './http-error.js'

export type SocketScheme = 'ws' | 'wss'

/**
 * A name the node answers to: an authority as clients write it in their URLs (`circle.example`,
 * `circle.example:8443`, `[2001:db8::1]:8090`), and the scheme they dial it with when that is not
 * the port's own (`wss://circle.example` for a port behind a proxy that terminates TLS).
 */
export interface Domain {
  readonly authority: string
  readonly scheme?: SocketScheme
}

/** Where a client reached the node: the authority of its `Host`, and the scheme it dialled. */
export interface Site {
  readonly authority: string
  readonly scheme: SocketScheme
}

/** Why a request is refused before it is served: an HTTP status and a coded error. */
export interface Refusal {
  readonly ok: false
  readonly status: 403 | 421
  readonly error: CirclesError
}

export type Admission = { readonly ok: true; readonly site: Site } | Refusal

/** Reports a bad entry of a list (`field` names it, `rule` says what is wrong); never returns. */
export type Fail = (field: string, rule: string) => never

const HOST_RE = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9]\d{0,4}))?$/
const DOMAIN_RE = /^(?:(wss?):\/\/)?(.+)$/
const ORIGIN_RE = /^https?:\/\/(.+)$/
/** Longer than any authority a browser sends; a longer header is refused unread. */
const MAX_HOST_CHARS = 300

interface HostParts {
  readonly authority: string
  readonly hostname: string
  readonly port: number | undefined
}

/** An authority (`host[:port]`, lowercase) split into its parts, or undefined when it is not one. */
function readAuthority(value: string): HostParts | undefined {
  if (value.length > MAX_HOST_CHARS) return undefined
  const authority = value.toLowerCase()
  const m = HOST_RE.exec(authority)
  if (m === null) return undefined
  const hostname = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  if (m[1]!.startsWith('[') && isIP(hostname) !== 6) return undefined
  const port = m[2] === undefined ? undefined : Number(m[2])
  if (port !== undefined && port > 65535) return undefined
  return { authority, hostname, port }
}

function readList(value: unknown, field: string, fail: Fail): readonly unknown[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) fail(field, 'must be an array of strings')
  return value
}

/**
 * Validate a list of domains (circles.json `domains`, `--domain`, the node option). `fail` is
 * the boundary's own error: CONFIG_INVALID, USAGE or INVALID_OPTION.
 */
export function parseDomains(value: unknown, field: string, fail: Fail): Domain[] {
  const seen = new Set<string>()
  return readList(value, field, fail).map((entry, i) => {
    const at = `${field}[${i}]`
    const m = typeof entry === 'string' ? DOMAIN_RE.exec(entry.toLowerCase()) : null
    const parts = m === null ? undefined : readAuthority(m[2]!)
    if (parts === undefined) fail(at, 'must be a host name or address with an optional port (circle.example, circle.example:8443), optionally after ws:// or wss://')
    if (seen.has(parts.authority)) fail(at, `lists ${parts.authority} twice`)
    seen.add(parts.authority)
    return { authority: parts.authority, ...(m![1] === undefined ? {} : { scheme: m![1] as SocketScheme }) }
  })
}

/** Validate a list of browser origins: `*`, or `http(s)://host[:port]` (lowercased). */
export function parseOrigins(value: unknown, field: string, fail: Fail): string[] {
  return readList(value, field, fail).map((entry, i) => {
    if (entry === '*') return entry
    const origin = typeof entry === 'string' ? entry.toLowerCase() : ''
    const m = ORIGIN_RE.exec(origin)
    if (m === null || readAuthority(m[1]!) === undefined) fail(`${field}[${i}]`, 'must be "*" or an origin: http(s)://host[:port], no path')
    return origin
  })
}

/** Every address of this machine's interfaces, read afresh (they change as networks come and go). */
function machineAddresses(): Set<string> {
  const addresses = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const info of list ?? []) addresses.add(info.address.toLowerCase())
  return addresses
}

export interface HostRulesOptions {
  /** The names configured for the listener (none: only loopback and the machine's addresses). */
  readonly domains: readonly Domain[]
  /** Browser origins allowed besides the listener's own (`*`: any). */
  readonly allowedOrigins: readonly string[]
  /** Whether the listener serves TLS (the default port and scheme follow). */
  readonly secure: boolean
  /** The port the listener is bound to (read per request: port 0 is bound late). */
  readonly port: () => number
}

/**
 * Which `Host` and `Origin` a listener serves. A sign-in message names the node by the `Host`
 * the client sent, so the node must only answer to names that are its own: a configured domain,
 * or — the default — loopback (over a loopback connection) or an address of this machine, on the
 * listener's own port. A DNS name nobody configured is refused, which also stops DNS rebinding:
 * a page that made its own name resolve to this machine sends that name. Browsers' WebSocket
 * upgrades are refused unless the page's origin is the listener's own (the playground) or listed.
 */
export class HostRules {
  private readonly options: HostRulesOptions
  private readonly origins: ReadonlySet<string>

  constructor(options: HostRulesOptions) {
    this.options = options
    this.origins = new Set(options.allowedOrigins)
  }

  /** The `Host` rule: the site the client reached, or the refusal (421). */
  host(request: IncomingMessage): Admission {
    const header = request.headers.host
    const host = header === undefined ? undefined : readAuthority(header)
    const ownScheme: SocketScheme = this.options.secure ? 'wss' : 'ws'
    if (host !== undefined) {
      const domain = this.options.domains.find((d) => d.authority === host.authority)
      if (domain !== undefined) return { ok: true, site: { authority: host.authority, scheme: domain.scheme ?? ownScheme } }
      if (this.isOwnAddress(host, request.socket.remoteAddress ?? '')) return { ok: true, site: { authority: host.authority, scheme: ownScheme } }
    }
    const shown = header === undefined ? 'no Host' : `Host ${JSON.stringify(header.slice(0, 100))}`
    return {
      ok: false,
      status: 421,
      error: circlesError('HOST_NOT_ALLOWED', `${shown} is not a name of this node: configure its domains (circles.json "domains", --domain)`),
    }
  }

  /** A WebSocket upgrade: the `Host` rule, then the `Origin` rule (403). */
  upgrade(request: IncomingMessage): Admission {
    const admitted = this.host(request)
    if (!admitted.ok) return admitted
    const origin = request.headers.origin
    if (origin === undefined || this.origins.has('*')) return admitted
    const own = `${admitted.site.scheme === 'wss' ? 'https' : 'http'}://${admitted.site.authority}`
    const given = origin.toLowerCase()
    if (given === own || this.origins.has(given)) return admitted
    return {
      ok: false,
      status: 403,
      error: circlesError('ORIGIN_NOT_ALLOWED', `Origin ${JSON.stringify(origin.slice(0, 100))} may not open connections here: list it in allowed_origins`),
    }
  }

  /** Loopback (only over a loopback connection) or an address of this machine, on the listener's port. */
  private isOwnAddress(host: HostParts, remote: string): boolean {
    if ((host.port ?? (this.options.secure ? 443 : 80)) !== this.options.port()) return false
    // A relay elsewhere could otherwise claim a loopback name its victims dial on their own machine.
    if (host.hostname === 'localhost' || isLoopback(host.hostname)) return isLoopback(remote)
    return isIP(host.hostname) !== 0 && machineAddresses().has(host.hostname)
  }
}

const STATUS_TEXT = { 403: 'Forbidden', 421: 'Misdirected Request' } as const

function refusalBody(refusal: Refusal): string {
  return JSON.stringify(toHttpError(refusal.error))
}

/** Answer a refused WebSocket upgrade on its raw socket, with the coded error as JSON. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = refusalBody(refusal)
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

/** Answer a refused plain HTTP request with the coded error as JSON. */
export function refuseRequest(res: ServerResponse, refusal: Refusal): void {
  answerHttpError(res, refusal.status, refusal.error, { connection: 'close' })
}

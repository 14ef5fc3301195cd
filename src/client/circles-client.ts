import { keyPairFromSecret, signPersonalMessage, type KeyPair } from '../identity/index.js'
import type { MethodName, MethodParams, MethodResults, PlayResult } from '../protocol/index.js'

/** The part of the WebSocket API the client uses (the browser's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

/** An error answer from a Circle node. */
export class RpcError extends Error {
  /** JSON-RPC error code. */
  readonly code: number
  /** The stable `data.code` string (see the README's error table). */
  readonly dataCode: string
  readonly data: Record<string, unknown>
  constructor(code: number, message: string, data: Record<string, unknown> | undefined) {
    super(message)
    this.name = 'RpcError'
    this.code = code
    this.data = data ?? {}
    this.dataCode = typeof data?.['code'] === 'string' ? data['code'] : 'UNKNOWN'
  }
}

/** The connection closed before an answer came. */
export class ConnectionClosedError extends Error {
  readonly closeCode: number
  readonly reason: string
  constructor(closeCode: number, reason: string) {
    super(`connection closed (${closeCode}${reason ? ` ${reason}` : ''})`)
    this.name = 'ConnectionClosedError'
    this.closeCode = closeCode
    this.reason = reason
  }
}

interface Waiter {
  resolve(value: unknown): void
  reject(error: Error): void
}

async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (global !== undefined) return global
  const ws = await import('ws')
  return ws.WebSocket as unknown as WebSocketConstructor
}

/**
 * A client for a Circle node: connect, authenticate with a secp256k1 key, run scripts.
 *
 * @example
 * const client = await CirclesClient.connect('ws://127.0.0.1:8090/')
 * await client.authenticate(secretKeyHex)
 * const { output } = await client.play('CALLER_PUBLIC_KEY')
 * client.close()
 */
export class CirclesClient {
  private readonly socket: WebSocketLike
  private readonly waiters = new Map<number, Waiter>()
  private nextId = 1
  private closed: ConnectionClosedError | undefined
  /** The key this connection authenticated as, once it has. */
  publicKey: string | undefined

  private constructor(socket: WebSocketLike) {
    this.socket = socket
    socket.addEventListener('message', (event: { data: unknown }) => this.onMessage(String(event.data)))
    socket.addEventListener('close', (event: { code: number; reason: string }) => {
      this.closed = new ConnectionClosedError(event.code, String(event.reason ?? ''))
      for (const waiter of this.waiters.values()) waiter.reject(this.closed)
      this.waiters.clear()
    })
  }

  /** Open a connection to `url` (`ws://host:port/` or `ws://host:port/<circle_pubkey>`). */
  static async connect(url: string, options: { WebSocket?: WebSocketConstructor } = {}): Promise<CirclesClient> {
    const Ctor = options.WebSocket ?? (await defaultWebSocket())
    const socket = new Ctor(url)
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve())
      socket.addEventListener('error', (event: { message?: string; error?: Error }) =>
        reject(event.error ?? new Error(`cannot connect to ${url}${event.message ? `: ${event.message}` : ''}`)),
      )
    })
    return new CirclesClient(socket)
  }

  private onMessage(text: string): void {
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      return
    }
    for (const item of Array.isArray(message) ? message : [message]) {
      const { id, result, error } = item as { id?: number; result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } }
      if (typeof id !== 'number') continue
      const waiter = this.waiters.get(id)
      if (waiter === undefined) continue
      this.waiters.delete(id)
      if (error !== undefined) waiter.reject(new RpcError(error.code, error.message, error.data))
      else waiter.resolve(result)
    }
  }

  /** Send one request and wait for its answer; error answers reject with {@link RpcError}. */
  request<M extends MethodName>(method: M, params: MethodParams[M]): Promise<MethodResults[M]> {
    if (this.closed !== undefined) return Promise.reject(this.closed)
    const id = this.nextId++
    return new Promise<MethodResults[M]>((resolve, reject) => {
      this.waiters.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
    })
  }

  /** Fetch a nonce, sign it (EIP-191 personal_sign) and authenticate as the key's owner. */
  async authenticate(key: string | KeyPair): Promise<void> {
    const pair = typeof key === 'string' ? keyPairFromSecret(key) : key
    const { nonce } = await this.request('fetch_nonce', { pubkey: pair.publicKey })
    await this.request('authenticate', { pubkey: pair.publicKey, signature: signPersonalMessage(nonce, pair.secretKey) })
    this.publicKey = pair.publicKey
  }

  /** Run a script in the connection's circle. */
  play(script: string, options: { timeoutMs?: number } = {}): Promise<PlayResult> {
    return this.request('play', { script, ...(options.timeoutMs === undefined ? {} : { timeout_ms: options.timeoutMs }) })
  }

  close(): void {
    this.socket.close(1000)
  }
}

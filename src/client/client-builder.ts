import { isPositiveInteger } from '../config/positive-integer.js'
import { normalizePublicKey, type PublicKeyHex } from '../identity/portable.js'
import { CirclesClient, DEFAULT_REQUEST_TIMEOUT_MS } from './circles-client.js'
import { resolveReconnectPolicy, type ReconnectPolicy, type ResolvedReconnectPolicy } from './reconnect.js'
import { contextOfUrl } from './sign-in-check.js'
import { secretKeySigner, type Signer } from './signer.js'
import type { WebSocketConstructor } from './websocket.js'
import { InvalidOptionError } from './errors.js'

/**
 * Builds a {@link CirclesClient}. Every option is checked when given (INVALID_OPTION names it).
 *
 * @example
 * const client = CirclesClient.builder('wss://circle.example:8443/')
 *   .withKey(viemSigner(account))   // or a 64-hex secret key, or any Signer
 *   .withTimeout(10_000)            // per-request deadline, ms
 *   .withReconnect({ maxAttempts: 5, initialDelayMs: 200 })
 *   .build()
 */
export class CirclesClientBuilder {
  private readonly url: string
  private signer: Signer | undefined
  private timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS
  private reconnect: ResolvedReconnectPolicy | undefined
  private WebSocket: WebSocketConstructor | undefined
  private contextKey: PublicKeyHex | undefined

  constructor(url: string) {
    if (typeof url !== 'string' || !/^wss?:\/\/[^/]/i.test(url)) {
      throw new InvalidOptionError('url must be a ws:// or wss:// URL')
    }
    this.url = url
  }

  /** The key to authenticate with: a secret key (64 hex) signed locally, or a {@link Signer}. */
  withKey(key: string | Signer): this {
    if (typeof key === 'string') this.signer = secretKeySigner(key)
    else if (key !== null && typeof key === 'object' && typeof key.signMessage === 'function') this.signer = key
    else throw new InvalidOptionError('withKey: give a 64-hex secret key or a Signer ({ publicKey? , address?, signMessage })')
    return this
  }

  /** How long each request waits for its answer, in ms (default 30 s); a request may override it. */
  withTimeout(ms: number): this {
    if (!isPositiveInteger(ms)) throw new InvalidOptionError('withTimeout: ms must be a positive integer')
    this.timeoutMs = ms
    return this
  }

  /**
   * Reconnect with back-off when the connection drops, and authenticate again with the same
   * signer. Requests in flight at the drop reject with CONNECTION_CLOSED (a `play` may have run:
   * it is never sent again); requests made while reconnecting wait for it, within their timeout.
   */
  withReconnect(policy: ReconnectPolicy = {}): this {
    this.reconnect = resolveReconnectPolicy(policy)
    return this
  }

  /** A WebSocket implementation to use instead of the platform's (e.g. `ws` with TLS options). */
  withWebSocket(ctor: WebSocketConstructor): this {
    if (typeof ctor !== 'function') throw new InvalidOptionError('withWebSocket: give a WebSocket constructor')
    this.WebSocket = ctor
    return this
  }

  /**
   * The context a `ws(s)://host:port/` URL talks to, when you know it: the client then refuses to
   * sign a sign-in message that names another. (A `/<key>` URL names its context itself; giving
   * another key here is INVALID_OPTION.)
   */
  withContextKey(key: string): this {
    try {
      this.contextKey = normalizePublicKey(key)
    } catch {
      throw new InvalidOptionError('withContextKey: give a secp256k1 public key, hex (compressed or uncompressed)')
    }
    const named = contextOfUrl(this.url)
    if (typeof named === 'string' && named !== this.contextKey) throw new InvalidOptionError(`withContextKey: the URL names another context (${named})`)
    return this
  }

  build(): CirclesClient {
    return new CirclesClient({
      url: this.url,
      timeoutMs: this.timeoutMs,
      ...(this.signer === undefined ? {} : { signer: this.signer }),
      ...(this.reconnect === undefined ? {} : { reconnect: this.reconnect }),
      ...(this.WebSocket === undefined ? {} : { WebSocket: this.WebSocket }),
      ...(this.contextKey === undefined ? {} : { contextKey: this.contextKey }),
    })
  }
}

/** The part of the WebSocket API the client uses: the browser's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

/** The WebSocket readyState of an open socket (same in browsers and `ws`). */
export const WS_OPEN = 1

let platformDefault: WebSocketConstructor | undefined

/**
 * Set the WebSocket implementation used when a client is given none. The Node entry sets
 * `ws` here (Node 20 has no global WebSocket); the browser entry leaves the global one.
 */
export function setDefaultWebSocket(ctor: WebSocketConstructor): void {
  platformDefault = ctor
}

/** The implementation to use: the one given, else the platform's default, else the global one. */
export function resolveWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor | undefined {
  return given ?? platformDefault ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
}

/**
 * The client library's Node entry: the browser entry's API, with the `ws` package as the
 * WebSocket (Node 20 has no global one).
 */
import { WebSocket } from 'ws'
import { setDefaultWebSocket, type WebSocketConstructor } from './websocket.js'

setDefaultWebSocket(WebSocket as unknown as WebSocketConstructor)

export * from './browser.js'

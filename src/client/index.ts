export { CirclesClient, RpcError, ConnectionClosedError, type WebSocketLike, type WebSocketConstructor } from './circles-client.js'

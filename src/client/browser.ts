/**
 * The client library's browser entry (bundled to `dist/browser/circles-client.js`): the global
 * WebSocket, `crypto.getRandomValues` for keys, nothing from Node. `index.ts` is the same API
 * for Node, over the `ws` package.
 *
 * @example
 * import { CirclesClient, eip1193Signer } from './circles-client.js'
 * const client = CirclesClient.builder(`ws://${location.host}/`).withKey(await eip1193Signer(window.ethereum)).build()
 */
export { CirclesClient, DEFAULT_REQUEST_TIMEOUT_MS, type ClientState, type ClientOptions, type RequestOptions, type PlayOptions } from './circles-client.js'
export { CirclesClientBuilder } from './client-builder.js'
export {
  CirclesClientError,
  RpcError,
  ConnectError,
  ConnectionClosedError,
  RequestTimeoutError,
  RequestAbortedError,
  MalformedAnswerError,
  SignInMismatchError,
  InvalidOptionError,
  type ClientErrorCode,
  type ErrorData,
} from './errors.js'
export {
  secretKeySigner,
  ethersSigner,
  viemSigner,
  eip1193Signer,
  type Signer,
  type EthersWalletLike,
  type ViemAccountLike,
  type Eip1193Provider,
} from './signer.js'
export { DEFAULT_RECONNECT, type ReconnectPolicy } from './reconnect.js'
export type { CircleInfo } from './answers.js'
export type { SubscribeFilter, LiveNotice, LiveHandler, Unsubscribe } from './subscriptions.js'
export type { WebSocketLike, WebSocketConstructor } from './websocket.js'
export type { PlayResult } from '../protocol/messages.js'
export { generateKeyPair, keyPairFromSecret, type KeyPair } from '../identity/portable.js'

/**
 * Circles' public API: run a node, host peer contexts, talk to circles.
 *
 * @example
 * import { CircleNode, CirclesClient, generateKeyPair } from '@circles-runtime/circles'
 */
export { CircleNode, type CircleNodeOptions, type NodeCircle, type ServedCircle } from './node/index.js'
export { launch, readCirclesConfig, parseCirclesConfig, keyPathFor, type CircleConfig, type LaunchOptions } from './launcher/index.js'
export { PeerHost, type PeerRef, type SpawnPeerOptions, type PlayRequest, type PlayOutcome } from './actors/peer/index.js'
export { SandboxPool, type SandboxPoolOptions } from './sandbox/index.js'
export { Verifier } from './verifier/index.js'
export { Supervisor, DEFAULT_FLAGS, type ChildSpec, type ChildHandle, type SupervisorFlags } from './supervisor/index.js'
export {
  CirclesClient,
  CirclesClientBuilder,
  CirclesClientError,
  RpcError,
  ConnectError,
  ConnectionClosedError,
  RequestTimeoutError,
  RequestAbortedError,
  MalformedAnswerError,
  SignInMismatchError,
  InvalidOptionError,
  secretKeySigner,
  ethersSigner,
  viemSigner,
  eip1193Signer,
  type Signer,
  type ClientState,
  type PlayOptions,
  type RequestOptions,
  type ReconnectPolicy,
  type CircleInfo,
  type PlayResult,
} from './client/index.js'
export {
  generateKeyPair,
  keyPairFromSecret,
  parsePublicKey,
  signPersonalMessage,
  verifyPersonalSignature,
  recoverPersonalSigner,
  personalMessageHash,
  readKeyFile,
  writeKeyFile,
  type KeyPair,
  type PublicKeyHex,
} from './identity/index.js'
export { parsePolicy, DEFAULT_POLICY, type Policy } from './policy/index.js'
export { ERROR_REGISTRY, circlesError, isCirclesError, type ErrorCode, type CirclesError } from './errors/index.js'
export { DEFAULTS, VERSION } from './config/index.js'

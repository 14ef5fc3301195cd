export { peerMachine, type PeerMachine } from './machine.js'
export type { PeerEvent, PeerContext, PeerInput } from './events.js'
export { PeerActor, type PeerHooks, type PeerSettings, type PlayRequest, type PlayOutcome, type TaskStatus, type PeerTermination } from './actor.js'
export {
  PeerHost,
  type PeerHostChild,
  DEFAULT_QUOTA,
  type PeerHostOptions,
  type SpawnPeerOptions,
  type PeerOverrides,
  type PeerRef,
  type LiveOptions,
  type ContextSubscription,
} from './peer-host.js'

export { RedisBridge, type RedisBridgeOptions, type BridgeCounters } from './redis-bridge.js'
export { QueueKeys, DEFAULT_PREFIX, isValidPrefix } from './keys.js'
export { hashSlot, HASH_SLOTS } from './hash-slot.js'
export { parseRedisTarget, redactRedisUrl, type RedisTarget } from './redis-target.js'
export { connect as connectRedis, type Connection as RedisConnection } from './redis-connection.js'
export { StartedTasks } from './started-tasks.js'
export { QueuedBytes } from './queued-bytes.js'
export {
  macOf,
  sameMac,
  signTask,
  verifyTask,
  readTaskRow,
  encodeAnswer,
  decodeAnswer,
  encodeReplyEntry,
  decodeReplyEntry,
  encodeTask,
  peekTask,
  parseOwnerToken,
  leaseValue,
  runHint,
  secretCheckValue,
  type MacField,
  type RunHint,
  type QueuedTask,
  type TaskAnswer,
  type TaskRecord,
} from './task-codec.js'
export { callThrough, readCall, MAX_TASK_CHAIN, type TaskCall, type CallGateway } from './remote-calls.js'
export { FeedRelay, type FeedRelayOptions } from './feed-relay.js'
export { encodeFeedMessage, decodeFeedMessage, type FeedMessage, type FeedNotice } from './feed-codec.js'

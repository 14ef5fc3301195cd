export { RedisBridge, type RedisBridgeOptions, type BridgeCounters } from './redis-bridge.js'
export { QueueKeys, DEFAULT_PREFIX, isValidPrefix } from './keys.js'
export { parseRedisTarget, redactRedisUrl, type RedisTarget } from './redis-target.js'
export { signTask, verifyTask, encodeAnswer, decodeAnswer, type QueuedTask, type TaskAnswer } from './task-codec.js'

export { LoadLimits, isLoopback, type LoadLimitOptions, type LimitName } from './load-limits.js'
export { TokenBuckets } from './token-buckets.js'
export { Quarantine } from './quarantine.js'

export { SandboxPool, type SandboxPoolOptions } from './sandbox-pool.js'
export type { SandboxIsolation } from './host-channel.js'
export type {
  ContextBatch,
  ContextBatchResult,
  RunLimits,
  RunOutcome,
  RunRequest,
} from './messages.js'

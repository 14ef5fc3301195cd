export { SandboxPool, type SandboxPoolOptions } from './sandbox-pool.js'
export type {
  ContextBatch,
  ContextBatchResult,
  RunLimits,
  RunOutcome,
  RunRequest,
} from './messages.js'

export {
  SandboxPool,
  type SandboxPoolOptions,
  type SandboxHooks,
  type SandboxContextRef,
  type HostStats,
  type RunSource,
  type RunOptions,
  type CallPort,
  type CallSpec,
  hostIndex,
} from './sandbox-pool.js'
export type { SandboxIsolation, HostExit } from './host-link.js'
export { DEFAULT_LIMITS, type RunLimits, type RunRequest, type SandboxContext } from './run.js'

export {
  DEFAULT_FLAGS,
  type ChildHandle,
  type ChildSpec,
  type ExitReason,
  type Restart,
  type Shutdown,
  type Strategy,
  type SupervisorFlags,
} from './child-spec.js'
export {
  Supervisor,
  type ChildInfo,
  type ChildStatus,
  type StartChildResult,
  type SupervisorEvent,
  type SupervisorOptions,
  type SupervisorTree,
  type TerminateChildResult,
} from './supervisor.js'
export { RestartIntensity } from './restart-intensity.js'
export { ExitListeners } from './exit-listeners.js'
export { handleFor } from './handle-for.js'

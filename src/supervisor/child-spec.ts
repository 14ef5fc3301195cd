/** How a child is restarted when it exits (Erlang/OTP semantics). */
export type Restart = 'permanent' | 'transient' | 'temporary'
/** How a child is stopped: killed at once, or given this many milliseconds to stop cleanly. */
export type Shutdown = 'brutal_kill' | number
/** What a supervisor does when a child has to be restarted. */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one'

/** Why a child exited: `normal` (it chose to, or was asked to) or an error. */
export type ExitReason = { readonly type: 'normal' } | { readonly type: 'error'; readonly error: Error }

/**
 * A running child as its supervisor sees it: something that can be stopped, killed, and that
 * reports its own exit exactly once.
 */
export interface ChildHandle {
  /** Ask the child to stop cleanly; resolves when it has. */
  stop(): Promise<void>
  /** Stop at once, dropping whatever the child was doing (it answers its pending work with errors). */
  kill(): void
  /** Register the exit listener (called once, for exits the supervisor did not ask for too). */
  onExit(listener: (reason: ExitReason) => void): void
}

/** A child described as data. */
export interface ChildSpec {
  readonly id: string
  readonly start: () => Promise<ChildHandle>
  readonly restart: Restart
  readonly shutdown: Shutdown
}

export interface SupervisorFlags {
  readonly strategy: Strategy
  /** Restarts allowed within `periodMs`; one more and the supervisor gives up (escalates). */
  readonly intensity: number
  readonly periodMs: number
}

/** OTP's defaults: one_for_one, at most 3 restarts in 5 seconds. */
export const DEFAULT_FLAGS: SupervisorFlags = Object.freeze({ strategy: 'one_for_one', intensity: 3, periodMs: 5_000 })

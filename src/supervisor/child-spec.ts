import type { SupervisorTree } from './supervisor.js'

/** How a child is restarted when it exits (Erlang/OTP semantics). */
export type Restart = 'permanent' | 'transient' | 'temporary'
/** How a child is stopped: killed at once, or given this many milliseconds to stop cleanly. */
export type Shutdown = 'brutal_kill' | number
/** What a supervisor does when a child has to be restarted. */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one'

/**
 * Why a child exited: `normal` (it chose to, or was asked to) or an error.
 *
 * An error blamed on the `workload` — a sandbox host killed by the script it was running — is
 * restarted like any other but does not count toward the supervisor's restart intensity: the
 * intensity is there to stop a node whose infrastructure keeps failing, and must not let one
 * caller's scripts stop the node.
 */
export type ExitReason =
  | { readonly type: 'normal' }
  | { readonly type: 'error'; readonly error: Error; readonly blame?: 'workload' }

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
  /** A child that is a supervisor, or owns one (the sandbox pool, the peer host), shows it in the tree. */
  tree?(): SupervisorTree
}

/** A child described as data. */
export interface ChildSpec {
  readonly id: string
  /** Start the child; a synchronous start may be registered with `startChildSync`. */
  readonly start: () => ChildHandle | Promise<ChildHandle>
  readonly restart: Restart
  readonly shutdown: Shutdown
  /** `supervisor` for a child that is itself a supervisor (for the tree's description). */
  readonly type?: 'worker' | 'supervisor'
}

export interface SupervisorFlags {
  readonly strategy: Strategy
  /** Restarts allowed within `periodMs`; one more and the supervisor gives up (escalates). */
  readonly intensity: number
  readonly periodMs: number
}

/** OTP's defaults: one_for_one, at most 3 restarts in 5 seconds. */
export const DEFAULT_FLAGS: SupervisorFlags = Object.freeze({ strategy: 'one_for_one', intensity: 3, periodMs: 5_000 })

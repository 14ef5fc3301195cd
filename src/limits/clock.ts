/**
 * What the limiters and the gateway's timers read time from. The node uses the process clock;
 * tests pass a clock they step (xstate's SimulatedClock fits), so that a refill, a back-off or an
 * idle timeout is checked by moving time, not by waiting for it.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences are read). */
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: any): void
}

export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

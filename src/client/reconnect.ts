import { InvalidOptionError } from './errors.js'

/**
 * How a client reconnects after its connection drops: up to `maxAttempts` tries, waiting
 * `initialDelayMs`, then `factor` times longer each time, at most `maxDelayMs` (each wait
 * randomised between half and all of it, so that many clients cut at once do not return in step).
 */
export interface ReconnectPolicy {
  readonly maxAttempts?: number
  readonly initialDelayMs?: number
  readonly maxDelayMs?: number
  readonly factor?: number
}

export type ResolvedReconnectPolicy = Required<ReconnectPolicy>

export const DEFAULT_RECONNECT: ResolvedReconnectPolicy = {
  maxAttempts: 10,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
}

function check(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionError(`withReconnect: ${name} must be a number ≥ ${min}`)
  }
  return value
}

/** Fill in defaults and validate; INVALID_OPTION names a bad field. */
export function resolveReconnectPolicy(policy: ReconnectPolicy): ResolvedReconnectPolicy {
  return {
    maxAttempts: check(policy.maxAttempts, DEFAULT_RECONNECT.maxAttempts, 'maxAttempts', 1),
    initialDelayMs: check(policy.initialDelayMs, DEFAULT_RECONNECT.initialDelayMs, 'initialDelayMs', 0),
    maxDelayMs: check(policy.maxDelayMs, DEFAULT_RECONNECT.maxDelayMs, 'maxDelayMs', 0),
    factor: check(policy.factor, DEFAULT_RECONNECT.factor, 'factor', 1),
  }
}

/** The wait before attempt `attempt` (1-based). */
export function reconnectDelayMs(policy: ResolvedReconnectPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1))
  return ceiling * (0.5 + Math.random() / 2)
}

/**
 * resolveReconnectPolicy and reconnectDelayMs: defaults, validation, and the back-off's growth,
 * ceiling and jitter range (Math.random pinned to the ends of its range).
 */
import t from 'tap'
import { DEFAULT_RECONNECT, reconnectDelayMs, resolveReconnectPolicy } from '../../src/client/reconnect.js'
import { InvalidOptionError } from '../../src/client/errors.js'

function withRandom<T>(value: number, fn: () => T): T {
  const real = Math.random
  Math.random = () => value
  try {
    return fn()
  } finally {
    Math.random = real
  }
}

t.test('defaults fill what is not given', async (t) => {
  t.same(resolveReconnectPolicy({}), DEFAULT_RECONNECT)
  t.same(DEFAULT_RECONNECT, { maxAttempts: 10, initialDelayMs: 100, maxDelayMs: 5_000, factor: 2 })
  t.same(resolveReconnectPolicy({ maxAttempts: 3, factor: 1 }), { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 5_000, factor: 1 })
  t.same(resolveReconnectPolicy({ initialDelayMs: 0, maxDelayMs: 0 }).initialDelayMs, 0, 'zero waits are allowed')
})

t.test('a bad field is INVALID_OPTION naming it and its minimum', async (t) => {
  const cases: [object, string][] = [
    [{ maxAttempts: 0 }, 'withReconnect: maxAttempts must be a number ≥ 1'],
    [{ initialDelayMs: -1 }, 'withReconnect: initialDelayMs must be a number ≥ 0'],
    [{ maxDelayMs: Number.POSITIVE_INFINITY }, 'withReconnect: maxDelayMs must be a number ≥ 0'],
    [{ factor: 0.5 }, 'withReconnect: factor must be a number ≥ 1'],
    [{ factor: Number.NaN }, 'withReconnect: factor must be a number ≥ 1'],
    [{ maxAttempts: '3' }, 'withReconnect: maxAttempts must be a number ≥ 1'],
  ]
  for (const [policy, message] of cases) {
    t.throws(() => resolveReconnectPolicy(policy), new InvalidOptionError(message), message)
  }
})

t.test('the ceiling grows by `factor` from initialDelayMs and stops at maxDelayMs', async (t) => {
  const policy = resolveReconnectPolicy({ initialDelayMs: 100, maxDelayMs: 1_000, factor: 3 })
  const ceilings = withRandom(0.9999999999, () => [1, 2, 3, 4, 5, 30].map((a) => Math.round(reconnectDelayMs(policy, a))))
  t.same(ceilings, [100, 300, 900, 1_000, 1_000, 1_000])
  const floors = withRandom(0, () => [1, 2, 3, 4].map((a) => reconnectDelayMs(policy, a)))
  t.same(floors, [50, 150, 450, 500], 'the shortest wait is half the ceiling')
  t.equal(withRandom(0.5, () => reconnectDelayMs(policy, 2)), 225, 'in between: linear in the random draw')
})

t.test('factor 1 waits the same each time; a huge attempt number stays finite', async (t) => {
  const flat = resolveReconnectPolicy({ initialDelayMs: 40, factor: 1 })
  t.same(withRandom(0, () => [1, 5, 50].map((a) => reconnectDelayMs(flat, a))), [20, 20, 20])
  t.equal(withRandom(0, () => reconnectDelayMs(DEFAULT_RECONNECT, 10_000)), 2_500, 'factor ** 9,999 is Infinity, capped at maxDelayMs')
})

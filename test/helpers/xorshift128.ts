/**
 * An attacker's tool, for tests: recover V8's `Math.random` state from observed draws and predict
 * the draws that follow.
 *
 * V8 11 (Node 20) keeps two uint64 words and steps them with xorshift128+:
 *
 *   s1 = state0; s0 = state1; state0 = s0
 *   s1 ^= s1 << 23; s1 ^= s1 >> 17; s1 ^= s0; s1 ^= s0 >> 26; state1 = s1
 *
 * and turns each new `state0` into a double by using its top 52 bits as the mantissa of a number
 * in [1, 2), minus 1 — so a draw shows 52 bits of state, exactly. Draws come from a cache of 64
 * values filled in generation order and handed out from the end (reverse order); where the first
 * observed draw sits in its cache is unknown, so every alignment is tried.
 *
 * Each state bit after k steps is a GF(2)-linear function of the 128 initial bits: tracked as a
 * BigInt bitmask over them, the observed mantissa bits give linear equations, solved by Gaussian
 * elimination. An alignment whose equations are consistent, with full rank, and whose state
 * reproduces every observed draw is the answer.
 */

const CACHE_SIZE = 64
const MASK64 = (1n << 64n) - 1n
const RHS = 1n << 128n
/** Draws used to solve (52 equations each); the rest only verify. */
const SOLVE_DRAWS = 4

export interface RecoveredState {
  /** The state before the first value of the first observed draw's cache was generated. */
  readonly state0: bigint
  readonly state1: bigint
  /** Draws left in that first cache when observation began (1..64). */
  readonly alignment: number
  /** Draws observed. */
  readonly observed: number
}

type Symbolic = bigint[] // 64 masks: bit i of the word is the XOR of the initial bits set in masks[i]

function step(state0: bigint, state1: bigint): [bigint, bigint] {
  let s1 = state0
  const s0 = state1
  s1 ^= (s1 << 23n) & MASK64
  s1 ^= s1 >> 17n
  s1 ^= s0
  s1 ^= s0 >> 26n
  return [s0, s1]
}

function stepSymbolic(state0: Symbolic, state1: Symbolic): [Symbolic, Symbolic] {
  let s1 = state0.slice()
  const s0 = state1
  s1 = s1.map((m, i) => (i >= 23 ? m ^ s1[i - 23]! : m))
  s1 = s1.map((m, i) => (i + 17 < 64 ? m ^ s1[i + 17]! : m))
  s1 = s1.map((m, i) => m ^ s0[i]!)
  s1 = s1.map((m, i) => (i + 26 < 64 ? m ^ s0[i + 26]! : m))
  return [s0, s1]
}

/** The double V8 makes of a state0 word. */
export function toDouble(state0: bigint): number {
  return Number(state0 >> 12n) / 2 ** 52
}

/** The generation index (steps from the recovered state, minus one) of observed draw `j`. */
function generationIndex(j: number, alignment: number): number {
  if (j < alignment) return alignment - 1 - j
  const k = j - alignment
  return CACHE_SIZE * (1 + Math.floor(k / CACHE_SIZE)) + (CACHE_SIZE - 1 - (k % CACHE_SIZE))
}

/** Symbolic state0 after 1..n steps from the unknown initial state (index g: after g + 1 steps). */
function symbolicOutputs(n: number): Symbolic[] {
  let s0: Symbolic = Array.from({ length: 64 }, (_, i) => 1n << BigInt(i))
  let s1: Symbolic = Array.from({ length: 64 }, (_, i) => 1n << BigInt(64 + i))
  const outputs: Symbolic[] = []
  for (let g = 0; g < n; g++) {
    ;[s0, s1] = stepSymbolic(s0, s1)
    outputs.push(s0)
  }
  return outputs
}

/** Solve the equations (mask | rhs << 128); undefined when inconsistent or not of full rank. */
function solve(equations: readonly bigint[]): bigint | undefined {
  const pivots = new Map<number, bigint>()
  for (let row of equations) {
    for (const [bit, pivot] of pivots) if ((row >> BigInt(bit)) & 1n) row ^= pivot
    const mask = row & (RHS - 1n)
    if (mask === 0n) {
      if (row !== 0n) return undefined
      continue
    }
    let bit = 0
    while (((mask >> BigInt(bit)) & 1n) === 0n) bit++
    for (const [other, pivot] of pivots) if ((pivot >> BigInt(bit)) & 1n) pivots.set(other, pivot ^ row)
    pivots.set(bit, row)
    if (pivots.size === 128) break
  }
  if (pivots.size < 128) return undefined
  let solution = 0n
  for (const [bit, pivot] of pivots) if (pivot & RHS) solution |= 1n << BigInt(bit)
  return solution
}

function mantissa(draw: number): bigint {
  return BigInt(draw * 2 ** 52)
}

/** The draws a recovered state predicts: observed draws `from` to `from + count - 1` (0-based). */
export function predict(state: RecoveredState, from: number, count: number): number[] {
  const wanted = Array.from({ length: count }, (_, i) => generationIndex(from + i, state.alignment))
  const last = Math.max(...wanted)
  const words: bigint[] = []
  let s0 = state.state0
  let s1 = state.state1
  for (let g = 0; g <= last; g++) {
    ;[s0, s1] = step(s0, s1)
    words.push(s0)
  }
  return wanted.map((g) => toDouble(words[g]!))
}

/**
 * The xorshift128+ state behind `draws` (consecutive `Math.random()` values of one generator),
 * or undefined when no state and cache alignment explains every one of them.
 */
export function recover(draws: readonly number[]): RecoveredState | undefined {
  if (draws.length < SOLVE_DRAWS + 2) throw new Error(`recover needs at least ${SOLVE_DRAWS + 2} draws`)
  if (!draws.every((d) => d >= 0 && d < 1 && Number.isInteger(d * 2 ** 52))) return undefined
  // The first draws lie in the first two caches whatever the alignment.
  const outputs = symbolicOutputs(2 * CACHE_SIZE)
  for (let alignment = 1; alignment <= CACHE_SIZE; alignment++) {
    const equations: bigint[] = []
    for (let j = 0; j < SOLVE_DRAWS; j++) {
      const word = outputs[generationIndex(j, alignment)]!
      const bits = mantissa(draws[j]!)
      for (let m = 0; m < 52; m++) equations.push(word[m + 12]! | (((bits >> BigInt(m)) & 1n) << 128n))
    }
    const solution = solve(equations)
    if (solution === undefined) continue
    const state: RecoveredState = { state0: solution & MASK64, state1: solution >> 64n, alignment, observed: draws.length }
    const replay = predict(state, 0, draws.length)
    if (replay.every((d, j) => d === draws[j])) return state
  }
  return undefined
}

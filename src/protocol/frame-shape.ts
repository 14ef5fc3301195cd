/** What a frame's shape is over, when it is: its nesting depth or its number of values. */
export type ShapeExcess = 'depth' | 'values'

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * One linear pass over a frame's bytes, before it is parsed: how deep arrays and objects nest,
 * and how many values there are (containers, plus one per `,` and `:` outside strings). Parsing
 * costs in proportion to those, not to bytes: a 1 MiB `[[[…]]]` took JSON.parse about 80 ms, a
 * 1 MiB object of distinct keys about 35 ms, a 1 MiB string under 2 ms. The pass stops at the
 * first excess. A string without escapes is skipped with `indexOf` (a script costs microseconds);
 * one with escapes is walked byte by byte. It does not validate: JSON.parse does, after it.
 */
export function shapeExcess(bytes: Uint8Array, maxDepth: number, maxValues: number): ShapeExcess | undefined {
  let depth = 0
  let values = 0
  /** The next backslash at or after the string being skipped (-1: none left; re-read once passed). */
  let backslash = -2
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!
    if (b === QUOTE) {
      const close = bytes.indexOf(QUOTE, i + 1)
      if (close === -1) return undefined
      if (backslash !== -1 && backslash <= i) backslash = bytes.indexOf(BACKSLASH, i + 1)
      if (backslash === -1 || backslash > close) {
        i = close
        continue
      }
      // Escapes: an escaped quote does not end the string.
      let k = backslash
      for (; k < n; k++) {
        const c = bytes[k]
        if (c === BACKSLASH) k++
        else if (c === QUOTE) break
      }
      if (k >= n) return undefined
      i = k
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return 'depth'
      if (++values > maxValues) return 'values'
    } else if (b === 0x5d || b === 0x7d) {
      depth--
    } else if (b === 0x2c || b === 0x3a) {
      if (++values > maxValues) return 'values'
    }
  }
  return undefined
}

/**
 * The one rule for a count, a size or a time in ms given as an option, a param or a flag: an
 * integer of at least 1 (and at most `max`, when the use has a bound). No imports: the browser
 * client uses it too.
 *
 * @example
 * isPositiveInteger(3)               // true
 * isPositiveInteger(0)               // false
 * isPositiveInteger(1.5)             // false
 * isPositiveInteger(5000, 1000)      // false
 */
export function isPositiveInteger(value: unknown, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max
}

/**
 * A positive integer written as text (a command-line flag), or `undefined` when the text is not
 * one.
 *
 * @example
 * parsePositiveInteger('8')     // 8
 * parsePositiveInteger('')      // undefined
 * parsePositiveInteger('-1')    // undefined
 */
export function parsePositiveInteger(text: string): number | undefined {
  const n = Number(text)
  return text.trim() !== '' && isPositiveInteger(n) ? n : undefined
}

import { circlesError } from '../errors/index.js'
import { isPositiveInteger } from './positive-integer.js'

/**
 * An option that must be a positive integer: `value`, or `fallback` when it is undefined.
 * Anything else throws INVALID_OPTION naming the option (`options.threads must be …`).
 */
export function positiveIntegerOption(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback
  if (!isPositiveInteger(n)) throw circlesError('INVALID_OPTION', `options.${name} must be a positive integer`)
  return n
}

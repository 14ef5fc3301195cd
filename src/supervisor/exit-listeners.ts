import type { ExitReason } from './child-spec.js'

/**
 * The exit listeners of a child (ChildHandle.onExit): a child exits once, and each listener hears
 * that exit once — including a listener registered after it, which is called at once. (A
 * supervisor attaches its listener after the child's start returns: a child that died in between
 * must not go unnoticed.)
 *
 * @example
 * private readonly exits = new ExitListeners()
 * onExit(listener: (reason: ExitReason) => void): void { this.exits.add(listener) }
 * // when the child ends:
 * this.exits.exit({ type: 'normal' })
 */
export class ExitListeners {
  private listeners: ((reason: ExitReason) => void)[] = []
  private reason: ExitReason | undefined

  /** Whether the child has exited. */
  get exited(): boolean {
    return this.reason !== undefined
  }

  /** Call `listener` when the child exits — at once, if it already has. */
  add(listener: (reason: ExitReason) => void): void {
    if (this.reason !== undefined) listener(this.reason)
    else this.listeners.push(listener)
  }

  /** Report the exit to every listener; only the first exit counts (false for any later one). */
  exit(reason: ExitReason): boolean {
    if (this.reason !== undefined) return false
    this.reason = reason
    for (const listener of this.listeners.splice(0)) listener(reason)
    return true
  }
}

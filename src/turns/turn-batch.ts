/**
 * Work gathered during one turn of the event loop and handed over once, at the turn's end
 * (`setImmediate`): however many times a turn asks, one flush. Used where many small writes of
 * one turn should leave as one (the Redis bridge's enqueues, wakes, takes and completions).
 *
 * @example
 * const pending: string[] = []
 * const batch = new TurnBatch(() => send(pending.splice(0)))
 * pending.push('a'); batch.schedule()
 * pending.push('b'); batch.schedule() // one send(['a', 'b']) at the end of the turn
 */
export class TurnBatch {
  private scheduled = false

  constructor(private readonly flush: () => void) {}

  /** Whether a flush is due at the end of this turn. */
  get pending(): boolean {
    return this.scheduled
  }

  /** Ask for a flush at the end of this turn (once, however often asked). */
  schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.run)
  }

  private readonly run = (): void => {
    this.scheduled = false
    this.flush()
  }
}

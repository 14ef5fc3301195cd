/**
 * The run budget of each workflow (a client's play and every call it leads to) on this node.
 * A workflow's entry lives while one of its runs holds it — the first run from its first call
 * on, each callee from its dispatch to its end — so that the budget cannot be reset by calling
 * in waves, and the map holds no more entries than there are live runs.
 */
export class ChainBudgets {
  private readonly chains = new Map<string, { runs: number; holds: number }>()

  constructor(private readonly maxRuns: number) {}

  /**
   * A run of `chainId` holds its entry (created with one run spent: the workflow's first). A call
   * from another node holds it with the runs that node had spent (`spent`: its budget less the
   * runs the call carries), and an entry held already counts at least those.
   */
  hold(chainId: string, spent = 1): void {
    const entry = this.chains.get(chainId)
    if (entry === undefined) this.chains.set(chainId, { runs: Math.max(1, spent), holds: 1 })
    else {
      entry.holds++
      entry.runs = Math.max(entry.runs, spent)
    }
  }

  /** Runs a held workflow may still start (0 for one not held). */
  left(chainId: string): number {
    const entry = this.chains.get(chainId)
    return entry === undefined ? 0 : Math.max(0, this.maxRuns - entry.runs)
  }

  release(chainId: string): void {
    const entry = this.chains.get(chainId)
    if (entry !== undefined && --entry.holds === 0) this.chains.delete(chainId)
  }

  /** Spend one run of a held workflow's budget; false when it is spent. */
  spend(chainId: string): boolean {
    const entry = this.chains.get(chainId)
    if (entry === undefined || entry.runs >= this.maxRuns) return false
    entry.runs++
    return true
  }

  /** Workflows with an entry (for tests and metrics). */
  get size(): number {
    return this.chains.size
  }
}

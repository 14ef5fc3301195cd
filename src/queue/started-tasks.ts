/**
 * The ids of the cross-node tasks an owner process has started, each kept until its deadline
 * plus a clock-skew allowance, so that the process never runs a task twice.
 *
 * Why in this process and not in Redis: whoever can write to Redis can reset or delete any state
 * kept there (a status, a claim, a set of ids), and a copy of a task's stored JSON keeps its MAC:
 * pushed back, it would run again as its original caller. Why not past the deadline: the owner
 * refuses a task whose deadline has passed, so the id is needed only until then. The allowance
 * covers the wall clock being stepped back (NTP) while the id is remembered: a task refused by
 * deadline stays refused as long as the clock moved back by less than it.
 *
 * Why not on disk: an owner that restarts (or a standby that takes over) must run again the
 * tasks whose run was cut off — the at-least-once guarantee of docs/cluster.md — and a list of
 * started ids on disk would refuse them. So a restart is the one moment a copy may run once more,
 * before its deadline.
 */
export class StartedTasks {
  private readonly ids = new Set<string>()
  /** Ids by the unix second after which they may be forgotten. */
  private readonly bySecond = new Map<number, string[]>()
  private nextPrune = 0

  constructor(
    private readonly skewMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether this process started task `id` (and may still be handed it before its deadline). */
  has(id: string): boolean {
    this.prune()
    return this.ids.has(id)
  }

  /** Task `id`, whose deadline is `deadline` (unix ms), starts now. */
  add(id: string, deadline: number): void {
    this.ids.add(id)
    const second = Math.ceil((deadline + this.skewMs) / 1000)
    let ids = this.bySecond.get(second)
    if (ids === undefined) this.bySecond.set(second, (ids = []))
    ids.push(id)
  }

  /** Ids remembered now. */
  get size(): number {
    return this.ids.size
  }

  /** Forget the ids whose deadline plus allowance has passed (at most once a second: buckets are seconds). */
  private prune(): void {
    const now = this.now()
    if (now < this.nextPrune) return
    this.nextPrune = now + 1000
    for (const [second, ids] of this.bySecond) {
      if (second * 1000 >= now) continue
      for (const id of ids) this.ids.delete(id)
      this.bySecond.delete(second)
    }
  }
}

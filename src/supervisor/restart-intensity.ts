/**
 * Sliding-window restart counter: `record()` answers false once more than `intensity` restarts
 * fall within `periodMs` — the point where a supervisor stops trying and escalates.
 */
export class RestartIntensity {
  private readonly times: number[] = []

  constructor(
    private readonly intensity: number,
    private readonly periodMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Record a restart; false when it exceeds the allowed intensity. */
  record(): boolean {
    const t = this.now()
    this.times.push(t)
    while (this.times.length > 0 && this.times[0]! <= t - this.periodMs) this.times.shift()
    return this.times.length <= this.intensity
  }
}

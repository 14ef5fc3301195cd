/**
 * A small Prometheus registry: labelled counters, gauges read at scrape time, and histograms,
 * rendered in the text exposition format (version 0.0.4).
 */
type Labels = Readonly<Record<string, string>>

function labelText(labels: Labels | undefined): string {
  if (labels === undefined) return ''
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

export class Counter {
  private readonly values = new Map<string, number>()
  /** Label text by the value of a single-label counter: `inc` is on hot paths. */
  private readonly keys = new Map<string, string>()
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels?: Labels, by = 1): void {
    const key = labelText(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }

  /** `inc({ [label]: value })` without building the label text each time. */
  incLabel(label: string, value: string): void {
    let key = this.keys.get(value)
    if (key === undefined) {
      key = labelText({ [label]: value })
      this.keys.set(value, key)
    }
    this.values.set(key, (this.values.get(key) ?? 0) + 1)
  }

  get(labels?: Labels): number {
    return this.values.get(labelText(labels)) ?? 0
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    if (this.values.size === 0) lines.push(`${this.name} 0`)
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${value}`)
    return lines.join('\n')
  }
}

export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
  ) {}

  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`].join('\n')
  }
}

export class Histogram {
  private readonly counts: number[]
  private sum = 0
  private count = 0
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0)
  }

  observe(value: number): void {
    this.sum += value
    this.count++
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`))
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`)
    return lines.join('\n')
  }
}

/** The node's metrics, shared by every listener it runs. */
export class Metrics {
  readonly connections = new Counter('circles_connections_total', 'WebSocket connections accepted')
  readonly requests = new Counter('circles_requests_total', 'JSON-RPC requests and notifications received, by method')
  readonly errors = new Counter('circles_errors_total', 'Error answers sent, by data.code')
  readonly authentications = new Counter('circles_authentications_total', 'authenticate attempts, by result')
  readonly playSeconds = new Histogram('circles_play_duration_seconds', 'Time from play request to answer', [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
  ])
  private readonly gauges: Gauge[] = []

  gauge(name: string, help: string, read: () => number): void {
    this.gauges.push(new Gauge(name, help, read))
  }

  constructor() {
    this.gauge('process_resident_memory_bytes', 'Resident memory of the node process', () => process.memoryUsage().rss)
    this.gauge('nodejs_heap_used_bytes', 'V8 heap used by the node process', () => process.memoryUsage().heapUsed)
  }

  render(): string {
    const all = [this.connections, this.requests, this.errors, this.authentications, this.playSeconds, ...this.gauges]
    return `${all.map((m) => m.render()).join('\n')}\n`
  }
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** A counter whose value lives elsewhere (a pool's running total): brought up to date at scrape time. */
function mirror(counter: Counter<string>, labels: Record<string, string>, last: Map<string, number>, key: string, value: number): void {
  const previous = last.get(key) ?? 0
  if (value > previous) counter.inc(labels, value - previous)
  last.set(key, value)
}

/** What the metrics read from the node at scrape time. */
export interface MetricSources {
  readonly connectionsOpen: () => number
  readonly peers: () => { readonly registered: number; readonly active: number }
  readonly tasksQueued: () => number
  readonly verifierQueued: () => number
  readonly hosts: () => readonly { readonly index: number; readonly up: boolean; readonly queued: number; readonly waiting: number; readonly runs: number; readonly crashes: number; readonly rebuilds: number; readonly restarts: number }[]
  readonly quarantined: () => number
  /** Live updates: subscriptions now, notifications delivered and change logs lost since start. */
  readonly live: () => { readonly subscriptions: number; readonly notifications: number; readonly logsLost: number }
  /** Bytes of answers waiting on sockets (the send budget's total). */
  readonly sendWaiting: () => number
  /** Cross-node figures, when the node is clustered. */
  readonly crossNode: () =>
    | { readonly sent: number; readonly received: number; readonly redelivered: number; readonly expired: number; readonly reconnects: number; readonly refused: number; readonly repeats: number; readonly poisoned: number; readonly waiting: number; readonly running: number; readonly connected: boolean }
    | undefined
}

const PLAY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * The node's metrics: one prom-client {@link Registry} per node (tests start several nodes in one
 * process), Prometheus names (`circles_<thing>_<unit>`, counters end in `_total`), the default
 * process metrics (event-loop lag, GC, heap, handles), and figures read from the node when
 * scraped. Hot-path series keep their labelled children so that counting costs no label hashing.
 *
 * @example
 * const metrics = new NodeMetrics(sources)
 * metrics.request('play')
 * const text = await metrics.render()
 */
export class NodeMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'method'>
  private readonly errors: Counter<'code'>
  private readonly authentications: Counter<'result'>
  private readonly connections: Counter<string>
  private readonly playSeconds: Histogram<'code'>
  private readonly rateLimited: Counter<'limit'>
  private readonly sendBudgetCuts: Counter<'budget'>
  private readonly backpressurePauses: Counter<string>
  private readonly calls: Counter<'outcome'>
  private readonly callChildren = new Map<string, ReturnType<Counter<'outcome'>['labels']>>()
  private readonly supervisorRestarts: Counter<'supervisor' | 'child'>
  private readonly supervisorEscalations: Counter<'supervisor'>
  private readonly requestChildren = new Map<string, ReturnType<Counter<'method'>['labels']>>()
  private readonly errorChildren = new Map<string, ReturnType<Counter<'code'>['labels']>>()
  private readonly playChildren = new Map<string, ReturnType<Histogram<'code'>['labels']>>()

  constructor(sources: MetricSources) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.connections = new Counter({ name: 'circles_connections_total', help: 'WebSocket connections accepted', registers })
    this.requests = new Counter({ name: 'circles_requests_total', help: 'JSON-RPC requests and notifications received, by method', labelNames: ['method'], registers })
    this.errors = new Counter({ name: 'circles_errors_total', help: 'Error answers sent (and connections cut), by data.code', labelNames: ['code'], registers })
    this.authentications = new Counter({ name: 'circles_authentications_total', help: 'authenticate attempts, by result (ok or the error code)', labelNames: ['result'], registers })
    this.playSeconds = new Histogram({
      name: 'circles_play_duration_seconds',
      help: 'Time from a play request to its answer, by outcome (ok or the error code)',
      labelNames: ['code'],
      buckets: PLAY_BUCKETS_SECONDS,
      registers,
    })
    this.calls = new Counter({ name: 'circles_calls_total', help: 'Calls scripts made to other contexts, by outcome (ok or the error code)', labelNames: ['outcome'], registers })
    this.rateLimited = new Counter({
      name: 'circles_rate_limited_total',
      help: 'Requests, frames and connections refused or held back by a load limit or the crash quarantine, by limit',
      labelNames: ['limit'],
      registers,
    })
    this.sendBudgetCuts = new Counter({
      name: 'circles_send_budget_cuts_total',
      help: 'Sockets cut (SLOW_CONSUMER) because answers waiting for them went over a budget: socket, address or node',
      labelNames: ['budget'],
      registers,
    })
    this.backpressurePauses = new Counter({ name: 'circles_backpressure_pauses_total', help: 'Times a socket stopped being read because its answers were not being taken', registers })
    new Gauge({ name: 'circles_send_waiting_bytes', help: 'Bytes of answers waiting on sockets, not yet taken by the kernel', registers, collect() { this.set(sources.sendWaiting()) } })
    this.supervisorRestarts = new Counter({ name: 'circles_supervisor_restarts_total', help: 'Children restarted by a supervisor', labelNames: ['supervisor', 'child'], registers })
    this.supervisorEscalations = new Counter({ name: 'circles_supervisor_escalations_total', help: 'Supervisors that gave up (restart intensity exceeded)', labelNames: ['supervisor'], registers })
    new Gauge({ name: 'circles_connections_open', help: 'Open WebSocket connections', registers, collect() { this.set(sources.connectionsOpen()) } })
    new Gauge({ name: 'circles_peers_registered', help: 'Peer contexts hosted by this node', registers, collect() { this.set(sources.peers().registered) } })
    new Gauge({ name: 'circles_peers_active', help: 'Peer contexts with a live actor (not passivated)', registers, collect() { this.set(sources.peers().active) } })
    new Gauge({ name: 'circles_tasks_queued', help: 'Script runs queued or running across contexts', registers, collect() { this.set(sources.tasksQueued()) } })
    new Gauge({ name: 'circles_verifier_queued', help: 'Signature checks waiting or running', registers, collect() { this.set(sources.verifierQueued()) } })
    new Gauge({ name: 'circles_quarantined', help: 'Circles and remote addresses refused for crashing sandbox hosts', registers, collect() { this.set(sources.quarantined()) } })
    new Gauge({
      name: 'circles_sandbox_host_up',
      help: 'Whether a sandbox host is up (1) or restarting (0)',
      labelNames: ['host'],
      registers,
      collect() {
        for (const h of sources.hosts()) this.set({ host: String(h.index) }, h.up ? 1 : 0)
      },
    })
    new Gauge({
      name: 'circles_sandbox_queue_depth',
      help: 'Runs waiting for a sandbox host or running in it',
      labelNames: ['host'],
      registers,
      collect() {
        for (const h of sources.hosts()) this.set({ host: String(h.index) }, h.queued)
      },
    })
    new Gauge({
      name: 'circles_sandbox_runs_waiting',
      help: 'Runs suspended on a sandbox host, waiting on their calls',
      labelNames: ['host'],
      registers,
      collect() {
        for (const h of sources.hosts()) this.set({ host: String(h.index) }, h.waiting)
      },
    })
    const hostCounter = (name: string, help: string, read: (h: ReturnType<MetricSources['hosts']>[number]) => number) => {
      const last = new Map<string, number>()
      new Counter({
        name,
        help,
        labelNames: ['host'],
        registers,
        collect() {
          for (const h of sources.hosts()) mirror(this, { host: String(h.index) }, last, String(h.index), read(h))
        },
      })
    }
    hostCounter('circles_sandbox_runs_total', 'Script runs completed by each sandbox host', (h) => h.runs)
    hostCounter('circles_sandbox_crashes_total', 'Runs that were executing when their sandbox host died', (h) => h.crashes)
    hostCounter('circles_sandbox_rebuilds_total', 'Isolate contexts rebuilt after a run hit its time or memory limit', (h) => h.rebuilds)
    hostCounter('circles_sandbox_host_restarts_total', 'Sandbox host processes started again after one died', (h) => h.restarts)
    /** A counter mirroring a running total the node keeps (absent while `source` gives nothing). */
    const sourcedCounter = <T>(source: () => T | undefined) => (name: string, help: string, read: (figures: T) => number) => {
      const last = new Map<string, number>()
      new Counter({
        name,
        help,
        registers,
        collect() {
          const figures = source()
          if (figures !== undefined) mirror(this, {}, last, '', read(figures))
        },
      })
    }
    const crossCounter = sourcedCounter(sources.crossNode)
    const liveCounter = sourcedCounter(sources.live)
    liveCounter('circles_notifications_total', 'Live-update notifications delivered to subscribed sockets', (l) => l.notifications)
    liveCounter('circles_change_logs_lost_total', 'Change logs lost under their subscribers (a crashed run, a run past its report bounds): RESYNC_REQUIRED', (l) => l.logsLost)
    new Gauge({ name: 'circles_subscriptions', help: 'Live-update subscriptions held by sockets now', registers, collect() { this.set(sources.live().subscriptions) } })
    crossCounter('circles_cross_node_tasks_sent_total', 'Tasks this node queued for contexts other nodes own', (c) => c.sent)
    crossCounter('circles_cross_node_tasks_received_total', 'Tasks this node took from the queues of contexts it owns', (c) => c.received)
    crossCounter('circles_cross_node_tasks_redelivered_total', 'Tasks taken again after their owner died (re-run, or answered from their record)', (c) => c.redelivered)
    crossCounter('circles_cross_node_tasks_expired_total', 'Cross-node tasks whose deadline passed before a reply or a run', (c) => c.expired)
    crossCounter('circles_cross_node_refused_total', 'Tasks or replies read from Redis and refused: malformed, or their MAC did not verify', (c) => c.refused)
    crossCounter('circles_cross_node_repeats_refused_total', 'Tasks refused because this node had already started them (a copy handed to it again through Redis)', (c) => c.repeats)
    crossCounter('circles_cross_node_poisoned_total', 'Entries in Redis the queue scripts skipped: an id that is not a task id, an entry over the size cap, a key of the wrong type', (c) => c.poisoned)
    crossCounter('circles_redis_reconnects_total', 'Times the connection to Redis came back', (c) => c.reconnects)
    new Gauge({
      name: 'circles_cross_node_queue_depth',
      help: 'Cross-node tasks this node waits on (role=gateway) or runs for other nodes (role=owner)',
      labelNames: ['role'],
      registers,
      collect() {
        const c = sources.crossNode()
        if (c === undefined) return
        this.set({ role: 'gateway' }, c.waiting)
        this.set({ role: 'owner' }, c.running)
      },
    })
    const redisConnected = new Gauge({
      name: 'circles_redis_connected',
      help: 'Whether the node reaches Redis (1) or not (0); absent when the node is not clustered',
      registers,
      collect() {
        const c = sources.crossNode()
        if (c !== undefined) this.set(c.connected ? 1 : 0)
      },
    })
    // An unlabelled gauge always has a sample (0 until set): an unclustered node would report
    // "Redis lost", the value an alert fires on. It has none until the node is clustered.
    const read = redisConnected.get.bind(redisConnected)
    redisConnected.get = async () => {
      const metric = await read()
      return sources.crossNode() === undefined ? { ...metric, values: [] } : metric
    }
  }

  connection(): void {
    this.connections.inc()
  }

  request(method: string): void {
    let child = this.requestChildren.get(method)
    if (child === undefined) this.requestChildren.set(method, (child = this.requests.labels(method)))
    child.inc()
  }

  error(code: string): void {
    let child = this.errorChildren.get(code)
    if (child === undefined) this.errorChildren.set(code, (child = this.errors.labels(code)))
    child.inc()
  }

  authentication(result: string): void {
    this.authentications.inc({ result })
  }

  /** A play answered: `code` is `ok` or the error's code. */
  play(code: string, seconds: number): void {
    let child = this.playChildren.get(code)
    if (child === undefined) this.playChildren.set(code, (child = this.playSeconds.labels(code)))
    child.observe(seconds)
  }

  /** A call settled: `outcome` is `ok` or the error's code. */
  call(outcome: string): void {
    let child = this.callChildren.get(outcome)
    if (child === undefined) this.callChildren.set(outcome, (child = this.calls.labels(outcome)))
    child.inc()
  }

  limited(limit: string): void {
    this.rateLimited.inc({ limit })
  }

  /** A socket was cut for going over a send budget. */
  sendBudgetCut(budget: string): void {
    this.sendBudgetCuts.inc({ budget })
  }

  /** A socket stopped being read: its answers are not taken. */
  backpressurePause(): void {
    this.backpressurePauses.inc()
  }

  supervisorRestart(supervisor: string, child: string): void {
    this.supervisorRestarts.inc({ supervisor, child })
  }

  supervisorEscalation(supervisor: string): void {
    this.supervisorEscalations.inc({ supervisor })
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}

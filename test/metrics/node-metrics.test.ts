/**
 * NodeMetrics with sources the test sets: every event method counts into its series, gauges read
 * their source at scrape time, and counters that mirror a running total kept elsewhere only go up
 * (a total that goes back — a restarted host — is counted on from its new value).
 */
import t from 'tap'
import { NodeMetrics, type MetricSources } from '../../src/metrics/node-metrics.js'
import { parsePrometheusText, seriesOf, valueOf } from '../../src/metrics/exposition-text.js'

type Cross = ReturnType<MetricSources['crossNode']>

function sources() {
  const state = {
    connections: 2,
    peers: { registered: 5, active: 3 },
    tasks: 7,
    verifier: 1,
    hosts: [{ index: 0, up: true, queued: 4, waiting: 2, runs: 10, crashes: 0, rebuilds: 1, restarts: 0 }],
    quarantined: 0,
    live: { subscriptions: 9, notifications: 100, logsLost: 0 },
    sendWaiting: 4096,
    cross: undefined as Cross,
  }
  const s: MetricSources = {
    connectionsOpen: () => state.connections,
    peers: () => state.peers,
    tasksQueued: () => state.tasks,
    verifierQueued: () => state.verifier,
    hosts: () => state.hosts,
    quarantined: () => state.quarantined,
    live: () => state.live,
    sendWaiting: () => state.sendWaiting,
    crossNode: () => state.cross,
  }
  return { state, s }
}

async function scrape(m: NodeMetrics) {
  return parsePrometheusText(await m.render())
}

t.test('event methods count into their series', async (t) => {
  const m = new NodeMetrics(sources().s)
  m.connection()
  m.connection()
  m.request('play')
  m.request('play')
  m.request('fetch_nonce')
  m.error('FORBIDDEN')
  m.authentication('ok')
  m.authentication('INVALID_SIGNATURE')
  m.play('ok', 0.003)
  m.play('ok', 2)
  m.play('TIMEOUT', 30)
  m.call('ok')
  m.limited('plays')
  m.sendBudgetCut('socket')
  m.backpressurePause()
  m.supervisorRestart('root', 'sandbox')
  m.supervisorEscalation('root')
  const f = await scrape(m)
  const expected: [string, Record<string, string>, number][] = [
    ['circles_connections_total', {}, 2],
    ['circles_requests_total', { method: 'play' }, 2],
    ['circles_requests_total', { method: 'fetch_nonce' }, 1],
    ['circles_errors_total', { code: 'FORBIDDEN' }, 1],
    ['circles_authentications_total', { result: 'ok' }, 1],
    ['circles_authentications_total', { result: 'INVALID_SIGNATURE' }, 1],
    ['circles_play_duration_seconds_count', { code: 'ok' }, 2],
    ['circles_play_duration_seconds_sum', { code: 'ok' }, 2.003],
    ['circles_play_duration_seconds_bucket', { code: 'ok', le: '0.005' }, 1],
    ['circles_play_duration_seconds_bucket', { code: 'ok', le: '2.5' }, 2],
    ['circles_play_duration_seconds_bucket', { code: 'TIMEOUT', le: '10' }, 0],
    ['circles_play_duration_seconds_bucket', { code: 'TIMEOUT', le: '+Inf' }, 1],
    ['circles_calls_total', { outcome: 'ok' }, 1],
    ['circles_rate_limited_total', { limit: 'plays' }, 1],
    ['circles_send_budget_cuts_total', { budget: 'socket' }, 1],
    ['circles_backpressure_pauses_total', {}, 1],
    ['circles_supervisor_restarts_total', { supervisor: 'root', child: 'sandbox' }, 1],
    ['circles_supervisor_escalations_total', { supervisor: 'root' }, 1],
  ]
  for (const [name, labels, value] of expected) t.equal(valueOf(f, name, labels), value, `${name} ${JSON.stringify(labels)}`)
  t.equal(m.contentType, 'text/plain; version=0.0.4; charset=utf-8')
})

t.test('gauges read their sources at each scrape', async (t) => {
  const { state, s } = sources()
  const m = new NodeMetrics(s)
  let f = await scrape(m)
  const gauges: [string, Record<string, string>, number][] = [
    ['circles_connections_open', {}, 2],
    ['circles_peers_registered', {}, 5],
    ['circles_peers_active', {}, 3],
    ['circles_tasks_queued', {}, 7],
    ['circles_verifier_queued', {}, 1],
    ['circles_quarantined', {}, 0],
    ['circles_subscriptions', {}, 9],
    ['circles_send_waiting_bytes', {}, 4096],
    ['circles_sandbox_host_up', { host: '0' }, 1],
    ['circles_sandbox_queue_depth', { host: '0' }, 4],
    ['circles_sandbox_runs_waiting', { host: '0' }, 2],
  ]
  for (const [name, labels, value] of gauges) t.equal(valueOf(f, name, labels), value, name)
  state.connections = 0
  state.hosts = [{ ...state.hosts[0]!, up: false, queued: 0 }]
  f = await scrape(m)
  t.equal(valueOf(f, 'circles_connections_open'), 0)
  t.equal(valueOf(f, 'circles_sandbox_host_up', { host: '0' }), 0)
})

t.test('mirrored counters only go up; a total that went back is counted on from there', async (t) => {
  const { state, s } = sources()
  const m = new NodeMetrics(s)
  const runs = async () => valueOf(await scrape(m), 'circles_sandbox_runs_total', { host: '0' })
  t.equal(await runs(), 10)
  state.hosts[0]!.runs = 15
  t.equal(await runs(), 15)
  state.hosts[0]!.runs = 3
  t.equal(await runs(), 15, 'the host restarted with a new total: the counter does not go down')
  state.hosts[0]!.runs = 5
  t.equal(await runs(), 17, 'two more runs since')
  t.equal(valueOf(await scrape(m), 'circles_notifications_total'), 100)
  state.live = { ...state.live, notifications: 130 }
  t.equal(valueOf(await scrape(m), 'circles_notifications_total'), 130)
})

// An unlabelled gauge has a 0 sample until set: circles_redis_connected 0 on a node without Redis
// would read as "Redis lost", the value an alert fires on.
t.test('circles_redis_connected is absent on a node that is not clustered', async (t) => {
  const m = new NodeMetrics(sources().s)
  t.same(seriesOf(await scrape(m), 'circles_redis_connected'), [])
})

t.test('cross-node series: read once the node is clustered', async (t) => {
  const { state, s } = sources()
  const m = new NodeMetrics(s)
  let f = await scrape(m)
  t.same(seriesOf(f, 'circles_cross_node_queue_depth'), [], 'the labelled queue depth has no series before')
  state.cross = { sent: 4, received: 3, redelivered: 1, expired: 0, reconnects: 2, refused: 0, repeats: 0, poisoned: 5, waiting: 6, running: 1, connected: false }
  f = await scrape(m)
  t.equal(valueOf(f, 'circles_redis_connected'), 0)
  t.equal(valueOf(f, 'circles_cross_node_tasks_sent_total'), 4)
  t.equal(valueOf(f, 'circles_cross_node_poisoned_total'), 5)
  t.equal(valueOf(f, 'circles_redis_reconnects_total'), 2)
  t.equal(valueOf(f, 'circles_cross_node_queue_depth', { role: 'gateway' }), 6)
  t.equal(valueOf(f, 'circles_cross_node_queue_depth', { role: 'owner' }), 1)
  state.cross = { ...state.cross!, connected: true }
  t.equal(valueOf(await scrape(m), 'circles_redis_connected'), 1)
})

t.test('two nodes in one process keep separate registries', async (t) => {
  const a = new NodeMetrics(sources().s)
  const b = new NodeMetrics(sources().s)
  a.request('play')
  t.equal(valueOf(await scrape(a), 'circles_requests_total', { method: 'play' }), 1)
  t.equal(valueOf(await scrape(b), 'circles_requests_total', { method: 'play' }), 0)
})

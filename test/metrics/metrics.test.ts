import t from 'tap'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'
import { startNode } from '../helpers/node.js'
import { parsePrometheusText, scrape, valueOf, type MetricFamily } from '../helpers/prometheus-text.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { waitUntil } from '../helpers/wait.js'

/** Every family the node itself defines, with its type. */
const CIRCLES_FAMILIES: Record<string, MetricFamily['type']> = {
  circles_connections_total: 'counter',
  circles_requests_total: 'counter',
  circles_errors_total: 'counter',
  circles_authentications_total: 'counter',
  circles_play_duration_seconds: 'histogram',
  circles_rate_limited_total: 'counter',
  circles_send_budget_cuts_total: 'counter',
  circles_backpressure_pauses_total: 'counter',
  circles_send_waiting_bytes: 'gauge',
  circles_supervisor_restarts_total: 'counter',
  circles_supervisor_escalations_total: 'counter',
  circles_connections_open: 'gauge',
  circles_peers_registered: 'gauge',
  circles_peers_active: 'gauge',
  circles_tasks_queued: 'gauge',
  circles_verifier_queued: 'gauge',
  circles_quarantined: 'gauge',
  circles_subscriptions: 'gauge',
  circles_notifications_total: 'counter',
  circles_change_logs_lost_total: 'counter',
  circles_sandbox_host_up: 'gauge',
  circles_sandbox_queue_depth: 'gauge',
  circles_sandbox_runs_total: 'counter',
  circles_sandbox_crashes_total: 'counter',
  circles_sandbox_rebuilds_total: 'counter',
  circles_sandbox_host_restarts_total: 'counter',
  circles_sandbox_runs_waiting: 'gauge',
  circles_calls_total: 'counter',
  // Cross-node series: declared on every node, with samples once it is clustered.
  circles_cross_node_tasks_sent_total: 'counter',
  circles_cross_node_tasks_received_total: 'counter',
  circles_cross_node_tasks_redelivered_total: 'counter',
  circles_cross_node_tasks_expired_total: 'counter',
  circles_cross_node_refused_total: 'counter',
  circles_cross_node_repeats_refused_total: 'counter',
  circles_cross_node_poisoned_total: 'counter',
  circles_redis_reconnects_total: 'counter',
  circles_cross_node_queue_depth: 'gauge',
  circles_redis_connected: 'gauge',
}

/** Default process metrics an operator expects (prom-client's): event-loop lag, GC, heap, handles, CPU, memory. */
const DEFAULT_FAMILIES: Record<string, MetricFamily['type']> = {
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
  nodejs_gc_duration_seconds: 'histogram',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_heap_size_total_bytes: 'gauge',
  nodejs_active_handles_total: 'gauge',
  nodejs_active_requests_total: 'gauge',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  process_open_fds: 'gauge',
}

t.test('a known sequence of requests gives exact counter values', async (t) => {
  const { node, circle, url, admin } = await startNode(t)
  const owner = await openSocket(url)
  t.match(await authenticate(owner, circle), { result: { authenticated: true } }) // fetch_nonce, authenticate: ok
  for (let i = 0; i < 3; i++) t.match(await owner.call('play', { script: `${i}` }), { result: { output: String(i) } })
  t.match(await owner.call('play', { script: 'throw new Error("no")' }), { error: { data: { code: 'SCRIPT_ERROR' } } })
  t.match(await owner.call('play', { script: 'while (true) {}', timeout_ms: 20 }), { error: { data: { code: 'SCRIPT_TIMEOUT' } } })
  t.match(await owner.call('no_such_method', {}), { error: { data: { code: 'METHOD_NOT_FOUND' } } })
  owner.send([
    { jsonrpc: '2.0', id: 'b1', method: 'play', params: { script: '"b1"' } },
    { jsonrpc: '2.0', method: 'play', params: { script: '"a notification"' } },
    { jsonrpc: '2.0', id: 'b2', method: 'play', params: { script: '"b2"' } },
  ])
  t.match(await owner.next(), [{ id: 'b1' }, { id: 'b2' }], 'the batch is answered once its entries are (the notification ran in order before b2)')

  const stranger = generateKeyPair()
  const impostor = await openSocket(url)
  const { result } = await impostor.call('fetch_nonce', { pubkey: circle.publicKey })
  t.match(await impostor.call('authenticate', { pubkey: circle.publicKey, signature: signPersonalMessage(result.nonce, stranger.secretKey) }), {
    error: { data: { code: 'INVALID_CREDENTIALS' } },
  })
  t.match(await impostor.closed, { code: 1008 })

  const anonymous = await openSocket(url)
  t.match(await anonymous.call('play', { script: '1' }), { error: { data: { code: 'AUTH_REQUIRED' } } })
  t.equal(valueOf(await scrape(admin), 'circles_connections_open'), 2, 'two sockets still open')
  owner.close()
  anonymous.close()
  await waitUntil(async () => valueOf(await scrape(admin), 'circles_connections_open') === 0, 'the node saw both sockets close')

  const m = await scrape(admin)
  const expected: [string, Record<string, string>, number][] = [
    ['circles_connections_total', {}, 3],
    ['circles_connections_open', {}, 0],
    ['circles_requests_total', { method: 'fetch_nonce' }, 2],
    ['circles_requests_total', { method: 'authenticate' }, 2],
    ['circles_requests_total', { method: 'play' }, 9],
    ['circles_authentications_total', { result: 'ok' }, 1],
    ['circles_authentications_total', { result: 'INVALID_CREDENTIALS' }, 1],
    ['circles_errors_total', { code: 'SCRIPT_ERROR' }, 1],
    ['circles_errors_total', { code: 'SCRIPT_TIMEOUT' }, 1],
    ['circles_errors_total', { code: 'METHOD_NOT_FOUND' }, 1],
    ['circles_errors_total', { code: 'INVALID_CREDENTIALS' }, 1],
    ['circles_errors_total', { code: 'AUTH_REQUIRED' }, 1],
    ['circles_play_duration_seconds_count', { code: 'ok' }, 6],
    ['circles_play_duration_seconds_count', { code: 'SCRIPT_ERROR' }, 1],
    ['circles_play_duration_seconds_count', { code: 'SCRIPT_TIMEOUT' }, 1],
    ['circles_play_duration_seconds_count', { code: 'AUTH_REQUIRED' }, 1],
    ['circles_rate_limited_total', { limit: 'plays' }, 0],
    ['circles_peers_registered', {}, 1],
    ['circles_sandbox_host_up', { host: '0' }, 1],
  ]
  for (const [name, labels, value] of expected) t.equal(valueOf(m, name, labels), value, `${name}${JSON.stringify(labels)}`)
  const errorSeries = m.get('circles_errors_total')!.samples.map((s) => s.labels['code'])
  t.same(errorSeries.sort(), ['AUTH_REQUIRED', 'INVALID_CREDENTIALS', 'METHOD_NOT_FOUND', 'SCRIPT_ERROR', 'SCRIPT_TIMEOUT'], 'no other error was counted')
  t.ok(valueOf(m, 'circles_play_duration_seconds_sum', { code: 'SCRIPT_TIMEOUT' }) >= 0.02, 'the timed-out play took at least its timeout')
  t.ok(node.sandbox.stats[0]!.runs >= 8, 'the sandbox ran them')
})

t.test('the whole exposition is well-formed Prometheus text', async (t) => {
  const { url, circle, admin } = await startNode(t)
  const socket = await openSocket(url)
  await authenticate(socket, circle)
  await socket.call('play', { script: '1' })
  socket.close()
  const res = await fetch(`${admin}/metrics`)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4; charset=utf-8$/)
  const families = parsePrometheusText(await res.text())
  for (const family of families.values()) {
    t.not(family.help, '', `${family.name} has a HELP line`)
    if (family.type === 'counter') t.match(family.name, /_total$/, `counter ${family.name} ends in _total`)
    if (family.name.startsWith('circles_')) {
      t.equal(family.type, CIRCLES_FAMILIES[family.name], `${family.name} is a ${CIRCLES_FAMILIES[family.name]}`)
      if (family.name.endsWith('_total')) t.equal(family.type, 'counter', `${family.name} ends in _total, so it is a counter`)
      if (family.type === 'histogram') t.match(family.name, /_seconds$/, 'a histogram of durations carries its unit')
    }
  }
  for (const [name, type] of Object.entries({ ...CIRCLES_FAMILIES, ...DEFAULT_FAMILIES })) {
    t.equal(families.get(name)?.type, type, `${name} is exported as a ${type}`)
  }
  t.ok(valueOf(families, 'process_resident_memory_bytes') > 0)
  t.ok(valueOf(families, 'nodejs_heap_size_used_bytes') > 0)

  t.test('the parser is strict', async (t) => {
    t.throws(() => parsePrometheusText('x_total 1\n'), /no TYPE/)
    t.throws(() => parsePrometheusText('# TYPE x counter\nx 1\nx 2\n'), /twice/)
    t.throws(() => parsePrometheusText('# TYPE x counter\nx{a="1} 1\n'), /unterminated/)
    t.throws(() => parsePrometheusText('# TYPE x counter\nx -1\n'), /counter x is -1/)
    t.throws(() => parsePrometheusText('# TYPE x gauge\nx one\n'), /bad value/)
    t.throws(() => parsePrometheusText('# TYPE x gauge\n# TYPE y gauge\ny 1\nx 1\n'), /apart from the rest/)
    t.throws(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /not cumulative/)
    t.throws(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'), /is not _count/)
    t.throws(() => parsePrometheusText('# TYPE x gauge\nx 1'), /line feed/)
  })
})

t.test('one registry per node: two nodes in one process count apart', async (t) => {
  const one = await startNode(t)
  const two = await startNode(t)
  const socket = await openSocket(one.url)
  await authenticate(socket, one.circle)
  await socket.call('play', { script: '"one"' })
  socket.close()
  const [m1, m2] = await Promise.all([scrape(one.admin), scrape(two.admin)])
  t.equal(valueOf(m1, 'circles_requests_total', { method: 'play' }), 1)
  t.equal(valueOf(m2, 'circles_requests_total', { method: 'play' }), 0)
  t.equal(valueOf(m1, 'circles_connections_total'), 1)
  t.equal(valueOf(m2, 'circles_connections_total'), 0)
  t.equal(valueOf(m2, 'circles_authentications_total', { result: 'ok' }), 0)
  t.ok(m1.has('nodejs_eventloop_lag_p99_seconds') && m2.has('nodejs_eventloop_lag_p99_seconds'), 'both export the process metrics')
  t.not(one.node.metrics.registry, two.node.metrics.registry)
})

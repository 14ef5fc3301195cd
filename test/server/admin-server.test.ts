/**
 * The admin listener over real sockets — AdminServer's routes, status mapping, Host rule and
 * errors — and the standby's admin listener (startStandbyAdmin): 503 {"status":"standby"} with the
 * holder's pid, and `circles_standby 1` as its only metric.
 */
import t from 'tap'
import { request } from 'node:http'
import { AdminServer } from '../../src/server/index.js'
import { startStandbyAdmin } from '../../src/node/standby-admin.js'
import { VERSION } from '../../src/config/index.js'

function get(port: number, path: string, options: { method?: string; host?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = options.host === undefined ? {} : { host: options.host }
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

function admin(health: () => { status: string } & Record<string, unknown>, metrics: () => Promise<{ text: string; contentType: string }>) {
  return new AdminServer({ host: '127.0.0.1', port: 0, domains: [{ authority: 'ops.example' }], health, metrics })
}

t.test('AdminServer: /metrics, /healthz by status, 404, 405, 421 and a failing metrics source', async (t) => {
  let status = 'ok'
  let failMetrics = false
  const server = admin(
    () => ({ status, extra: 1 }),
    async () => {
      if (failMetrics) throw new Error('the registry is gone')
      return { text: 'm 1\n', contentType: 'text/plain; version=0.0.4' }
    },
  )
  const port = await server.listen()
  t.teardown(() => server.stop())
  t.equal(server.port, port)
  t.equal(server.url, `http://127.0.0.1:${port}`)

  const metrics = await get(port, '/metrics?x=1')
  t.same([metrics.status, metrics.headers['content-type'], metrics.body], [200, 'text/plain; version=0.0.4', 'm 1\n'])
  for (const [s, code] of [['ok', 200], ['degraded', 200], ['failing', 503], ['standby', 503]] as const) {
    status = s
    const health = await get(port, '/healthz')
    t.equal(health.status, code, `status ${s}`)
    t.same(JSON.parse(health.body), { status: s, extra: 1 })
  }
  const missing = await get(port, '/nope')
  t.same([missing.status, JSON.parse(missing.body)], [404, { code: 'NOT_FOUND', message: JSON.parse(missing.body).message, endpoints: ['/metrics', '/healthz'] }])
  const post = await get(port, '/metrics', { method: 'POST' })
  t.same([post.status, post.headers['allow'], JSON.parse(post.body).code], [405, 'GET', 'METHOD_NOT_ALLOWED'])
  const rebound = await get(port, '/metrics', { host: `evil.example:${port}` })
  t.same([rebound.status, JSON.parse(rebound.body).code], [421, 'HOST_NOT_ALLOWED'], 'a name nobody configured (DNS rebinding)')
  const named = await get(port, '/metrics', { host: 'ops.example' })
  t.equal(named.status, 200, 'a configured domain')
  failMetrics = true
  const failed = await get(port, '/metrics')
  t.same([failed.status, JSON.parse(failed.body)], [500, { code: 'INTERNAL_ERROR', message: 'the registry is gone' }])
})

t.test('AdminServer: stop and kill report their exits', async (t) => {
  const reasons: string[] = []
  const a = admin(() => ({ status: 'ok' }), async () => ({ text: '', contentType: 'text/plain' }))
  a.onExit((r) => reasons.push(r.type))
  await a.listen()
  await a.stop()
  const b = admin(() => ({ status: 'ok' }), async () => ({ text: '', contentType: 'text/plain' }))
  b.onExit((r) => reasons.push(r.type === 'error' ? `error: ${r.error.message}` : r.type))
  await b.listen()
  b.kill()
  t.same(reasons, ['normal', 'error: admin listener killed'])
})

t.test('startStandbyAdmin: 503 standby naming the holder, and circles_standby 1', async (t) => {
  let holder: { pid?: number } | undefined = { pid: 4242 }
  const server = await startStandbyAdmin({ port: 0 }, [], '/var/lib/circles/db', () => holder)
  t.teardown(() => server.stop())
  const health = await get(server.port, '/healthz')
  t.equal(health.status, 503)
  t.same(JSON.parse(health.body), { status: 'standby', version: VERSION, pid: process.pid, db_path: '/var/lib/circles/db', holder_pid: 4242 })
  holder = undefined
  t.equal(JSON.parse((await get(server.port, '/healthz')).body).holder_pid, null, 'no holder known')
  holder = {}
  t.equal(JSON.parse((await get(server.port, '/healthz')).body).holder_pid, null, 'a holder without a pid')
  const metrics = await get(server.port, '/metrics')
  t.equal(metrics.status, 200)
  t.equal(metrics.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.match(metrics.body, /^# HELP circles_standby .*\n# TYPE circles_standby gauge\ncircles_standby 1\n$/)
})

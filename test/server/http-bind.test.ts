/**
 * answerHttpError and bind over real sockets: the one body shape of an HTTP error (and none for
 * HEAD), and a port in use reported as ADDRESS_IN_USE naming the listener, the address and the
 * remedy, with errors after the bind handed to the listener's own handler.
 */
import t from 'tap'
import { createServer, request, type Server } from 'node:http'
import { circlesError } from '../../src/errors/index.js'
import { answerHttpError } from '../../src/server/http-error.js'
import { bind } from '../../src/server/bind.js'

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

function fetchRaw(port: number, method: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: '/', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('answerHttpError: status, JSON body { code, message, ...details }, extra headers; HEAD gets headers only', async (t) => {
  const server = createServer((_req, res) => {
    answerHttpError(res, 404, circlesError('NOT_FOUND', 'no such path: /x', { endpoints: ['/info', '/healthz'] }), { 'x-extra': 'yes' })
  })
  const port = await bind(server, { host: '127.0.0.1', port: 0, listener: 'the test listener', remedy: 'none' }, () => {})
  t.teardown(() => close(server))
  const got = await fetchRaw(port, 'GET')
  t.equal(got.status, 404)
  t.equal(got.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(got.headers['x-extra'], 'yes')
  t.same(JSON.parse(got.body), { code: 'NOT_FOUND', message: 'no such path: /x', endpoints: ['/info', '/healthz'] })
  t.equal(Number(got.headers['content-length']), Buffer.byteLength(got.body))
  const head = await fetchRaw(port, 'HEAD')
  t.equal(head.status, 404)
  t.equal(head.body, '')
  t.equal(Number(head.headers['content-length']), Buffer.byteLength(got.body), 'HEAD: the length the GET body has')
})

t.test('answerHttpError: a detail cannot overwrite code or message; non-ASCII lengths are bytes', async (t) => {
  const server = createServer((_req, res) => answerHttpError(res, 400, circlesError('INVALID_PARAMS', 'é → ü', { code: 'spoofed', message: 'spoofed', where: 'ß' })))
  const port = await bind(server, { host: '127.0.0.1', port: 0, listener: 'the test listener', remedy: 'none' }, () => {})
  t.teardown(() => close(server))
  const got = await fetchRaw(port, 'GET')
  t.same(JSON.parse(got.body), { code: 'INVALID_PARAMS', message: 'é → ü', where: 'ß' })
  t.equal(Number(got.headers['content-length']), Buffer.byteLength(got.body))
})

t.test('bind: resolves with the bound port; a port in use is ADDRESS_IN_USE naming listener, address and remedy', async (t) => {
  const first = createServer()
  const port = await bind(first, { host: '127.0.0.1', port: 0, listener: 'the admin listener', remedy: 'pick another --admin-port' }, () => {})
  t.teardown(() => close(first))
  t.ok(port > 0 && port < 65536)
  t.equal(first.listening, true)

  const second = createServer()
  const refused = await bind(second, { host: '127.0.0.1', port, listener: 'circle "alice"', remedy: 'change its port in circles.json' }, () => {}).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.match(refused, {
    code: 'ADDRESS_IN_USE',
    message: `circle "alice" cannot listen on 127.0.0.1:${port}: the port is in use (by another circles process?); change its port in circles.json`,
    details: { host: '127.0.0.1', port },
  })
  t.equal(second.listening, false)
})

/** Whether this machine has an IPv6 loopback to listen on. */
const ipv6 = await new Promise<boolean>((resolve) => {
  const probe = createServer()
  probe.once('error', () => resolve(false))
  probe.listen(0, '::1', () => probe.close(() => resolve(true)))
})

t.test('bind: an IPv6 address is written in brackets', { skip: ipv6 ? false : 'no IPv6 loopback on this machine' }, async (t) => {
  const first = createServer()
  const port = await bind(first, { host: '::1', port: 0, listener: 'a', remedy: 'r' }, () => {})
  t.teardown(() => close(first))
  const refused = await bind(createServer(), { host: '::1', port, listener: 'the admin listener', remedy: 'r' }, () => {}).catch((e: Error) => e)
  t.equal((refused as Error).message, `the admin listener cannot listen on [::1]:${port}: the port is in use (by another circles process?); r`)
})

t.test('bind: other listen errors are rejected as they are', async (t) => {
  const refused = await bind(createServer(), { host: '192.0.2.254', port: 0, listener: 'a', remedy: 'r' }, () => {}).catch((e: NodeJS.ErrnoException) => e)
  t.equal((refused as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL', 'an address this machine does not have')
})

t.test('bind: errors after the bind go to onLaterError, not to the promise', async (t) => {
  const server = createServer()
  const later: Error[] = []
  await bind(server, { host: '127.0.0.1', port: 0, listener: 'a', remedy: 'r' }, (e) => later.push(e))
  t.teardown(() => close(server))
  t.equal(server.listenerCount('error'), 1, 'only the later handler is left')
  const boom = new Error('later')
  server.emit('error', boom)
  t.same(later, [boom])
})

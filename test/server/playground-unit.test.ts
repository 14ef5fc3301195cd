/**
 * The playground's serving at the module level: which paths are its files, the page's CSP (no
 * Host header can widen it), and its files served over a real listener with their headers.
 */
import t from 'tap'
import { createServer, request } from 'node:http'
import { readFileSync } from 'node:fs'
import { isPlaygroundPath, playgroundCsp, servePlayground } from '../../src/server/playground.js'

t.test('isPlaygroundPath: the listed files only', async (t) => {
  for (const p of ['/', '/playground/app.js', '/playground/style.css', '/playground/favicon.svg', '/playground/circles-client.js']) t.equal(isPlaygroundPath(p), true, p)
  for (const p of ['/playground/', '/playground/../package.json', '/index.html', '/playground/app.js?x', '/toString', '/__proto__', '']) t.equal(isPlaygroundPath(p), false, p)
})

t.test('playgroundCsp: its own origin, plus the WebSocket of the Host it was reached at', async (t) => {
  t.equal(
    playgroundCsp('circle.example:8090', false),
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' ws://circle.example:8090; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  )
  t.match(playgroundCsp('[::1]:8443', true), "connect-src 'self' wss://[::1]:8443;")
  t.match(playgroundCsp(undefined, true), "connect-src 'self';")
  for (const host of ["evil.example; script-src 'unsafe-inline'", 'a b', 'h:123456', 'h/x', '*']) {
    t.match(playgroundCsp(host, false), "connect-src 'self'; base-uri", `a Host that is not one adds nothing: ${host}`)
  }
})

t.test('servePlayground: the page and its files with their headers', async (t) => {
  const server = createServer((req, res) => void servePlayground(req, res, req.url!, false))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as { port: number }).port
  const get = (path: string, method = 'GET') =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      })
      req.on('error', reject)
      req.end()
    })
  const page = await get('/')
  t.equal(page.status, 200)
  t.same(page.body, readFileSync(new URL('../../playground/index.html', import.meta.url)))
  t.match(page.headers, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'content-security-policy': playgroundCsp(`127.0.0.1:${port}`, false),
  })
  t.equal(Number(page.headers['content-length']), page.body.length)
  const css = await get('/playground/style.css')
  t.equal(css.headers['content-type'], 'text/css; charset=utf-8')
  t.same(css.body, readFileSync(new URL('../../playground/style.css', import.meta.url)))
  const head = await get('/playground/app.js', 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body.length, 0)
  t.equal(Number(head.headers['content-length']), readFileSync(new URL('../../playground/app.js', import.meta.url)).length)
})

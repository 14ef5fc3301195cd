import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureBrowserBundle, ROOT } from '../helpers/browser-build.js'
import { startNode } from '../helpers/node.js'

t.test('every circle port serves the playground', async (t) => {
  const bundle = readFileSync(ensureBrowserBundle())
  const { http } = await startNode(t)
  const host = http.replace('http://', '')

  t.test('GET / is the page, with a strict Content-Security-Policy', async (t) => {
    const response = await fetch(`${http}/`)
    t.equal(response.status, 200)
    t.equal(response.headers.get('content-type'), 'text/html; charset=utf-8')
    t.equal(response.headers.get('x-content-type-options'), 'nosniff')
    const csp = response.headers.get('content-security-policy')!
    const directives = Object.fromEntries(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]))
    t.same(directives, {
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'img-src': "'self'",
      'connect-src': `'self' ws://${host}`,
      'base-uri': "'none'",
      'form-action': "'none'",
      'frame-ancestors': "'none'",
    })
    const html = await response.text()
    t.match(html, /<textarea id="script"/)
    t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
    t.notMatch(html, /\son[a-z]+=/i, 'no inline event handler')
  })

  t.test('a Host header that is not a plain host:port is not repeated in the policy', async (t) => {
    const { request } = await import('node:http')
    const csp = await new Promise<string>((resolve, reject) => {
      request(`${http}/`, { headers: { host: 'evil; script-src *' } }, (res) => {
        res.resume()
        resolve(String(res.headers['content-security-policy']))
      }).on('error', reject).end()
    })
    t.match(csp, /connect-src 'self';/)
  })

  t.test('the assets, with their content types; the client is the browser build', async (t) => {
    const types: Record<string, string> = {
      '/playground/app.js': 'text/javascript; charset=utf-8',
      '/playground/style.css': 'text/css; charset=utf-8',
      '/playground/favicon.svg': 'image/svg+xml',
      '/playground/circles-client.js': 'text/javascript; charset=utf-8',
    }
    for (const [path, type] of Object.entries(types)) {
      const response = await fetch(`${http}${path}`)
      t.equal(response.status, 200, path)
      t.equal(response.headers.get('content-type'), type, path)
      if (path.endsWith('circles-client.js')) t.ok(Buffer.from(await response.arrayBuffer()).equals(bundle), 'the bundle as built')
      else await response.arrayBuffer()
    }
    const head = await fetch(`${http}/`, { method: 'HEAD' })
    t.equal(head.status, 200)
    t.equal(await head.text(), '', 'HEAD has no body')
  })

  t.test('nothing else is served from disk', async (t) => {
    for (const path of ['/playground/', '/playground/../package.json', '/package.json', '/playground/app.js/', '/dist/browser/circles-client.js', '/index.html']) {
      const response = await fetch(`${http}${path}`)
      t.equal(response.status, 404, path)
      await response.arrayBuffer()
    }
  })

  t.test('the page talks only to its own origin, through the client library: no CDN, no other host', async (t) => {
    const dir = join(ROOT, 'playground')
    for (const file of readdirSync(dir)) {
      const text = readFileSync(join(dir, file), 'utf8').replace('xmlns="http://www.w3.org/2000/svg"', '')
      t.notMatch(text, /\b(?:https?|wss?):\/\/(?!\$\{)/, `${file} names no outside URL`)
    }
    const app = readFileSync(join(dir, 'app.js'), 'utf8')
    t.same([...app.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1]), ['./circles-client.js'])
    t.notMatch(app, /\bnew WebSocket\b|\bfetch\(/, 'no socket or fetch of its own')
  })

  t.test('GET /info answers CORS: it is public', async (t) => {
    const response = await fetch(`${http}/info`, { headers: { origin: 'https://elsewhere.example' } })
    t.equal(response.headers.get('access-control-allow-origin'), '*')
    t.match(await response.json(), { name: 'test' })
  })
})

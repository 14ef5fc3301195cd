/**
 * HostRules and the list parsers at the module level: which domains and origins a list accepts
 * (and how a bad entry is named), and the Host and Origin decisions for requests given as their
 * headers and remote address.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { HostRules, parseDomains, parseOrigins, type Fail } from '../../src/server/index.js'

class ListError extends Error {
  constructor(readonly field: string, readonly rule: string) {
    super(`${field} ${rule}`)
  }
}
const fail: Fail = (field, rule) => {
  throw new ListError(field, rule)
}

/** What `fn` reported through `fail`, or undefined when it accepted the list. */
function failure(fn: () => unknown): { field: string; rule: string } | undefined {
  try {
    fn()
  } catch (e) {
    if (e instanceof ListError) return { field: e.field, rule: e.rule }
    throw e
  }
  return undefined
}

function request(host: string | undefined, remote: string, origin?: string): IncomingMessage {
  const headers: Record<string, string> = {}
  if (host !== undefined) headers['host'] = host
  if (origin !== undefined) headers['origin'] = origin
  return { headers, socket: { remoteAddress: remote } } as unknown as IncomingMessage
}

t.test('parseDomains: host names and addresses with optional port and scheme, lowercased', async (t) => {
  t.same(parseDomains(undefined, 'domains', fail), [])
  t.same(parseDomains(['Circle.Example', 'circle.example:8443', 'wss://edge.example', 'ws://[2001:DB8::1]:8090', '192.0.2.1'], 'domains', fail), [
    { authority: 'circle.example' },
    { authority: 'circle.example:8443' },
    { authority: 'edge.example', scheme: 'wss' },
    { authority: '[2001:db8::1]:8090', scheme: 'ws' },
    { authority: '192.0.2.1' },
  ])
})

t.test('parseDomains: a bad entry is named by its index', async (t) => {
  const bad = ['https://circle.example', 'circle.example/path', 'circle.example:0', 'circle.example:65536', '[not-ipv6]', '-circle.example', 'circle.example.', '', 'a b', 42, null, 'x'.repeat(301)]
  for (const entry of bad) {
    t.match(failure(() => parseDomains(['ok.example', entry], 'domains', fail)), { field: 'domains[1]' }, JSON.stringify(entry)?.slice(0, 40) ?? String(entry))
  }
  t.match(failure(() => parseDomains('circle.example', 'domains', fail)), { field: 'domains', rule: 'must be an array of strings' })
  t.match(failure(() => parseDomains(['a.example', 'A.example'], '--domain', fail)), { field: '--domain[1]', rule: 'lists a.example twice' })
  t.match(failure(() => parseDomains(['ws://a.example', 'wss://a.example'], 'domains', fail)), { field: 'domains[1]', rule: 'lists a.example twice' }, 'the same authority under two schemes')
  t.same(parseDomains(['a.example', 'a.example:80'], 'domains', fail).length, 2, 'another port is another authority')
})

t.test('parseOrigins: "*" or http(s)://host[:port], lowercased', async (t) => {
  t.same(parseOrigins(['*', 'HTTPS://App.Example', 'http://localhost:5173', 'https://[::1]:8443'], 'allowed_origins', fail), [
    '*',
    'https://app.example',
    'http://localhost:5173',
    'https://[::1]:8443',
  ])
  for (const entry of ['app.example', 'https://app.example/', 'https://app.example/path', 'ws://app.example', 'https://', 'https://app.example:99999', '**', 7]) {
    t.match(failure(() => parseOrigins([entry], 'allowed_origins', fail)), { field: 'allowed_origins[0]', rule: 'must be "*" or an origin: http(s)://host[:port], no path' }, String(entry))
  }
  t.match(failure(() => parseOrigins({}, 'allowed_origins', fail)), { field: 'allowed_origins' })
})

function rules(options: Partial<ConstructorParameters<typeof HostRules>[0]> = {}) {
  return new HostRules({ domains: [], allowedOrigins: [], secure: false, port: () => 8090, ...options })
}

t.test('Host: a configured domain is served with its scheme (or the port own)', async (t) => {
  const r = rules({ domains: parseDomains(['circle.example', 'wss://edge.example:8090'], 'domains', fail) })
  t.same(r.host(request('Circle.Example', '203.0.113.5')), { ok: true, site: { authority: 'circle.example', scheme: 'ws' } })
  t.same(r.host(request('edge.example:8090', '203.0.113.5')), { ok: true, site: { authority: 'edge.example:8090', scheme: 'wss' } })
  const secure = rules({ secure: true, domains: parseDomains(['circle.example'], 'domains', fail) })
  t.same(secure.host(request('circle.example', '203.0.113.5')), { ok: true, site: { authority: 'circle.example', scheme: 'wss' } })
  t.equal(r.host(request('circle.example:8090', '203.0.113.5')).ok, false, 'a domain is matched with its port')
})

t.test('Host: names nobody configured are 421 HOST_NOT_ALLOWED', async (t) => {
  const r = rules({ domains: parseDomains(['circle.example'], 'domains', fail) })
  for (const host of ['evil.example', 'evil.example:8090', 'circle.example.evil', 'x'.repeat(400), 'circle.example:8090/']) {
    const refused = r.host(request(host, '203.0.113.5'))
    t.equal(refused.ok, false, host.slice(0, 40))
    if (!refused.ok) {
      t.equal(refused.status, 421)
      t.equal(refused.error.code, 'HOST_NOT_ALLOWED')
    }
  }
  const none = r.host(request(undefined, '203.0.113.5'))
  t.equal(!none.ok && none.error.message.startsWith('no Host is not a name of this node'), true, 'no Host header')
  const long = r.host(request('y'.repeat(400), '203.0.113.5'))
  t.equal(!long.ok && long.error.message.includes('y'.repeat(101)), false, 'a long Host is cut in the message')
})

t.test('Host: loopback names only over a loopback connection, and only on the listener port', async (t) => {
  const r = rules()
  for (const host of ['localhost:8090', '127.0.0.1:8090', '[::1]:8090', '127.0.0.2:8090']) {
    t.same(r.host(request(host, '127.0.0.1')), { ok: true, site: { authority: host, scheme: 'ws' } }, `${host} from loopback`)
    t.equal(r.host(request(host, '203.0.113.5')).ok, false, `${host} relayed from elsewhere`)
  }
  t.equal(r.host(request('localhost:8091', '127.0.0.1')).ok, false, 'another port')
  t.equal(r.host(request('localhost', '127.0.0.1')).ok, false, 'no port means 80 for ws')
  const on80 = rules({ port: () => 80 })
  t.equal(on80.host(request('localhost', '::1')).ok, true, 'no port on a port-80 listener')
  const on443 = rules({ secure: true, port: () => 443 })
  t.same(on443.host(request('localhost', '::ffff:127.0.0.1')), { ok: true, site: { authority: 'localhost', scheme: 'wss' } })
  t.equal(r.host(request('evil.example:8090', '127.0.0.1')).ok, false, 'a DNS name is not loopback, even from loopback')
})

t.test('Host: a documentation address that is not this machine is refused', async (t) => {
  t.equal(rules().host(request('192.0.2.123:8090', '192.0.2.200')).ok, false)
})

t.test('upgrade: the Origin rule after the Host rule', async (t) => {
  const r = rules({ domains: parseDomains(['circle.example', 'wss://edge.example'], 'domains', fail), allowedOrigins: ['https://app.example'] })
  t.equal(r.upgrade(request('circle.example', '203.0.113.5')).ok, true, 'no Origin (not a browser)')
  t.equal(r.upgrade(request('circle.example', '203.0.113.5', 'http://circle.example')).ok, true, 'its own origin (the playground)')
  t.equal(r.upgrade(request('edge.example', '203.0.113.5', 'https://edge.example')).ok, true, 'its own origin behind a TLS proxy')
  t.equal(r.upgrade(request('edge.example', '203.0.113.5', 'http://edge.example')).ok, false, 'the wrong scheme is another origin')
  t.equal(r.upgrade(request('circle.example', '203.0.113.5', 'HTTPS://APP.EXAMPLE')).ok, true, 'a listed origin, any case')
  const refused = r.upgrade(request('circle.example', '203.0.113.5', 'https://evil.example'))
  t.equal(refused.ok, false)
  if (!refused.ok) {
    t.equal(refused.status, 403)
    t.equal(refused.error.code, 'ORIGIN_NOT_ALLOWED')
  }
  const hostFirst = r.upgrade(request('evil.example', '203.0.113.5', 'https://app.example'))
  t.equal(!hostFirst.ok && hostFirst.status, 421, 'a bad Host is refused before its Origin is read')
  const any = rules({ domains: parseDomains(['circle.example'], 'domains', fail), allowedOrigins: ['*'] })
  t.equal(any.upgrade(request('circle.example', '203.0.113.5', 'https://whatever.example')).ok, true, '"*" allows any origin')
})

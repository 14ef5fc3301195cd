import t from 'tap'
import { request } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { CircleNode, type CircleNodeOptions, type NodeCircle } from '../../src/node/index.js'
import { metric } from '../helpers/cli-node.js'
import { startNode } from '../helpers/node.js'

// Which Host and Origin a node serves, over real sockets: an upgrade is either a WebSocket (101)
// or an HTTP refusal whose JSON body names the code.

interface Upgraded {
  readonly status: number
  readonly body?: { code: string; message: string }
  /** The sign-in message a socket that opened gets from fetch_nonce. */
  readonly message?: string
}

/** Open a WebSocket to `url` sending `headers`; on 101, fetch a sign-in message on it and close it. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<Upgraded> {
  const ws = new WebSocket(url, { headers })
  return new Promise<Upgraded>((resolve, reject) => {
    ws.once('open', () => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'fetch_nonce', params: { pubkey: generateKeyPair().publicKey } }))
      ws.once('message', (data) => {
        ws.close()
        resolve({ status: 101, message: JSON.parse(data.toString()).result.nonce })
      })
    })
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => {
        req.destroy()
        resolve({ status: res.statusCode!, body: JSON.parse(text) })
      })
    })
    ws.once('error', reject)
  })
}

/** GET with a Host of our choosing (fetch does not let a caller set one). */
function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host === undefined ? {} : { host } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const lines = (message: string | undefined) => (message ?? '').split('\n')

/** A node with the circles given (each a key of its own, port 0), closed at teardown. */
async function start(
  t: { teardown(fn: () => unknown): void },
  circles: Partial<NodeCircle>[],
  options: Partial<CircleNodeOptions> = {},
): Promise<{ keys: KeyPair[]; ports: number[]; admin: string }> {
  const keys = circles.map(() => generateKeyPair())
  const { node, admin } = await startNode(t, { circles: circles.map((c, i) => ({ name: `c${i}`, keyPair: keys[i]!, host: '127.0.0.1', port: 0, ...c })), ...options })
  return { keys, ports: node.served.map((s) => s.port), admin }
}

t.test('no domains configured: loopback and the machine’s addresses on the port’s own port', async (t) => {
  const { keys, ports, admin } = await start(t, [{}])
  const port = ports[0]!
  const url = `ws://127.0.0.1:${port}/`

  t.test('the Host the client dialled is accepted, and named by the sign-in message', async (t) => {
    const plain = await upgrade(url)
    t.equal(plain.status, 101)
    t.same(lines(plain.message).slice(0, 6), [
      `127.0.0.1:${port} wants you to sign in with your Ethereum account:`,
      lines(plain.message)[1],
      '',
      `Sign in to the Circles context ${keys[0]!.publicKey}.`,
      '',
      `URI: ws://127.0.0.1:${port}/`,
    ])
    const named = await upgrade(`ws://localhost:${port}/${keys[0]!.publicKey}`)
    t.equal(named.status, 101, 'localhost, over a loopback connection')
    t.equal(lines(named.message)[0], `localhost:${port} wants you to sign in with your Ethereum account:`)
    t.equal(lines(named.message)[5], `URI: ws://localhost:${port}/${keys[0]!.publicKey}`)
  })

  t.test('any other Host is refused (421 HOST_NOT_ALLOWED): a DNS name, another port, no port', async (t) => {
    for (const host of [`evil.example:${port}`, `127.0.0.1:${port + 1}`, '127.0.0.1', `circle.example:${port}`]) {
      const refused = await upgrade(url, { Host: host })
      t.equal(refused.status, 421, host)
      t.equal(refused.body?.code, 'HOST_NOT_ALLOWED', host)
    }
  })

  t.test('browser origins: the port’s own and none are accepted; any other is refused (403 ORIGIN_NOT_ALLOWED)', async (t) => {
    t.equal((await upgrade(url, { Origin: `http://127.0.0.1:${port}` })).status, 101, 'the playground’s own origin')
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${port + 1}`]) {
      const refused = await upgrade(url, { Origin: origin })
      t.equal(refused.status, 403, origin)
      t.equal(refused.body?.code, 'ORIGIN_NOT_ALLOWED', origin)
    }
  })

  t.test('refusals are counted by code', async (t) => {
    t.equal(await metric(admin, 'circles_errors_total{code="HOST_NOT_ALLOWED"}'), 4)
    t.equal(await metric(admin, 'circles_errors_total{code="ORIGIN_NOT_ALLOWED"}'), 3)
  })

  t.test('the admin listener: the same Host rule (a rebinding page cannot read /metrics)', async (t) => {
    const adminPort = new URL(admin).port
    t.equal((await get(`${admin}/metrics`)).status, 200)
    t.equal((await get(`${admin}/metrics`, `localhost:${adminPort}`)).status, 200)
    const refused = await get(`${admin}/metrics`, `evil.example:${adminPort}`)
    t.equal(refused.status, 421)
    t.equal(JSON.parse(refused.body).code, 'HOST_NOT_ALLOWED')
    t.equal((await get(`${admin}/healthz`, `127.0.0.1:${port}`)).status, 421, 'a circle port’s Host is not the admin listener’s')
  })
})

const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address

t.test('over a network interface', { skip: external === undefined ? 'this machine has no non-loopback IPv4 address' : false }, async (t) => {
  const { ports } = await start(t, [{ host: '0.0.0.0' }])
  const port = ports[0]!
  const url = `ws://${external}:${port}/`
  const direct = await upgrade(url)
  t.equal(direct.status, 101, 'an address of this machine is its own')
  t.equal(lines(direct.message)[0], `${external}:${port} wants you to sign in with your Ethereum account:`)
  // A relay on another machine could claim the loopback name its victims dial there.
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
    const refused = await upgrade(url, { Host: host })
    t.equal(refused.status, 421, `${host} from a non-loopback address`)
  }
})

t.test('configured domains and allowed origins', async (t) => {
  const { ports, admin } = await start(t, [{}, { allowedOrigins: ['*'] }, { domains: ['other.example'] }], {
    domains: ['circle.example', 'wss://secure.example'],
    allowedOrigins: ['https://app.example'],
  })
  const [port, anyOrigin, own] = ports as [number, number, number]
  const url = `ws://127.0.0.1:${port}/`

  t.test('a configured name is accepted and named; its scheme is the one clients dial', async (t) => {
    const named = await upgrade(url, { Host: 'circle.example' })
    t.equal(named.status, 101)
    t.equal(lines(named.message)[0], 'circle.example wants you to sign in with your Ethereum account:')
    t.equal(lines(named.message)[5], 'URI: ws://circle.example/')
    const proxied = await upgrade(url, { Host: 'secure.example', Origin: 'https://secure.example' })
    t.equal(proxied.status, 101, 'the page’s own origin behind a TLS proxy')
    t.equal(lines(proxied.message)[5], 'URI: wss://secure.example/')
    t.equal((await upgrade(url, { Host: 'circle.example:8443' })).status, 421, 'the authority must be the one configured, port included')
    t.equal((await upgrade(url)).status, 101, 'loopback is still the node’s own')
  })

  t.test('listed origins are accepted, others refused; "*" accepts any', async (t) => {
    t.equal((await upgrade(url, { Host: 'circle.example', Origin: 'https://app.example' })).status, 101)
    t.equal((await upgrade(url, { Host: 'circle.example', Origin: 'https://evil.example' })).status, 403)
    t.equal((await upgrade(`ws://127.0.0.1:${anyOrigin}/`, { Origin: 'https://evil.example' })).status, 101)
  })

  t.test('a circle’s own list replaces the node’s', async (t) => {
    t.equal((await upgrade(`ws://127.0.0.1:${own}/`, { Host: 'other.example' })).status, 101)
    t.equal((await upgrade(`ws://127.0.0.1:${own}/`, { Host: 'circle.example' })).status, 421)
    t.equal((await upgrade(`ws://127.0.0.1:${own}/`, { Origin: 'https://app.example' })).status, 101, 'the node’s origins, since it lists none')
  })

  t.test('the admin listener answers to the node’s domains', async (t) => {
    t.equal((await get(`${admin}/healthz`, 'circle.example')).status, 200)
    t.equal((await get(`${admin}/healthz`, 'other.example')).status, 421)
  })
})

t.test('node options are checked (INVALID_OPTION naming the option)', async (t) => {
  const dbPath = mkdtempSync(join(tmpdir(), 'circles-host-rules-'))
  t.teardown(() => rmSync(dbPath, { recursive: true, force: true }))
  const circle = { name: 'c', keyPair: generateKeyPair(), host: '127.0.0.1', port: 0 }
  await t.rejects(CircleNode.start({ dbPath, circles: [circle], domains: ['evil.example/x'] }), { code: 'INVALID_OPTION', message: /options\.domains\[0\]/ })
  await t.rejects(CircleNode.start({ dbPath, circles: [{ ...circle, allowedOrigins: ['evil'] }] }), { code: 'INVALID_OPTION', message: /options\.circles\[0\]\.allowedOrigins\[0\]/ })
})

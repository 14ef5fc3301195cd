import t from 'tap'
import { silentLogger } from '../../src/log/index.js'
import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { get } from 'node:https'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { CirclesClient, type WebSocketConstructor } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { launch, parseCirclesConfig } from '../../src/launcher/index.js'

/** A self-signed certificate for 127.0.0.1 and localhost, valid one day (openssl is on the machine and in CI). */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' })
  return { cert, key }
}

t.test('a circle with tls serves https and wss on its port', async (t) => {
  const dir = t.testdir()
  const { cert } = selfSigned(dir)
  writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ name: 'secure', port: 0, tls: { cert_path: 'cert.pem', key_path: 'key.pem' } }]))
  const { node, circles } = await launch({ configPath: join(dir, 'circles.json'), dbPath: join(dir, 'db'), node: { sandbox: { processes: 1 }, logger: silentLogger() } })
  t.teardown(() => node.close())
  const url = circles[0]!.url
  t.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/$/)
  const ca = readFileSync(cert)

  // The test trusts its own certificate, as a browser would once told to.
  class TrustingWebSocket extends WebSocket {
    constructor(address: string) {
      super(address, { ca })
    }
  }
  const me = generateKeyPair()
  const client = CirclesClient.builder(url).withKey(me.secretKey).withWebSocket(TrustingWebSocket as unknown as WebSocketConstructor).build()
  t.teardown(() => client.close())
  await client.connect()
  await client.authenticate()
  t.equal((await client.play('CALLER_PUBLIC_KEY')).output, me.publicKey, 'JSON-RPC over wss')

  const https = (path: string) =>
    new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      get(`${url.replace(/^wss/, 'https')}${path.slice(1)}`, { ca }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }))
      }).on('error', reject)
    })
  const info = await https('/info')
  t.equal(info.status, 200)
  t.match(JSON.parse(info.body), { name: 'secure' })
  const page = await https('/')
  t.equal(page.type, 'text/html; charset=utf-8', 'the playground over https')

  const untrusting = CirclesClient.builder(url).build()
  await t.rejects(untrusting.connect(), { code: 'CONNECT_FAILED', message: /self.signed/i }, 'a client that does not trust the certificate cannot connect')
})

t.test('tls settings are validated like the others (CONFIG_INVALID names the field)', async (t) => {
  const base = { name: 'a', port: 0 }
  const cases: [unknown, RegExp][] = [
    ['yes', /circles\[0\]\.tls must be an object/],
    [{ cert_path: 'c.pem' }, /circles\[0\]\.tls\.key_path must be a non-empty string/],
    [{ cert_path: '', key_path: 'k.pem' }, /circles\[0\]\.tls\.cert_path must be a non-empty string/],
    [{ cert_path: 'c.pem', key_path: 'k.pem', ca_path: 'x' }, /circles\[0\]\.tls\.ca_path is not a TLS setting/],
  ]
  for (const [tls, message] of cases) {
    t.throws(() => parseCirclesConfig([{ ...base, tls }], '/base'), { code: 'CONFIG_INVALID', message }, JSON.stringify(tls))
  }
  t.match(parseCirclesConfig([{ ...base, tls: { cert_path: 'c.pem', key_path: '/abs/k.pem' } }], '/base')[0]!.tls, { certPath: '/base/c.pem', keyPath: '/abs/k.pem' })

  const dir = t.testdir({ 'junk.pem': 'not a certificate' })
  chmodSync(join(dir, 'junk.pem'), 0o600)
  const { cert } = selfSigned(dir)
  const attempt = async (tls: unknown) => {
    writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ ...base, tls }]))
    return launch({ configPath: join(dir, 'circles.json'), dbPath: join(dir, 'db'), node: { sandbox: { processes: 1 }, logger: silentLogger() } })
  }
  await t.rejects(attempt({ cert_path: 'missing.pem', key_path: 'key.pem' }), { code: 'CONFIG_INVALID', message: /circles\[0\]\.tls\.cert_path: cannot read .*missing\.pem \(ENOENT\)/ })
  await t.rejects(attempt({ cert_path: cert, key_path: 'junk.pem' }), { code: 'CONFIG_INVALID', message: /circles\[0\]\.tls: the certificate and key do not load/ })
})

t.test('a private key other users can read is refused; group-readable (ssl-cert) is served', async (t) => {
  const dir = t.testdir()
  const { key } = selfSigned(dir)
  writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ name: 'secure', port: 0, tls: { cert_path: 'cert.pem', key_path: 'key.pem' } }]))
  const attempt = () => launch({ configPath: join(dir, 'circles.json'), dbPath: join(dir, 'db'), node: { sandbox: { processes: 1 }, logger: silentLogger() } })
  for (const mode of [0o644, 0o604, 0o602]) {
    chmodSync(key, mode)
    await t.rejects(attempt(), { code: 'CONFIG_INVALID', details: { field: 'circles[0].tls.key_path' }, message: /circles\[0\]\.tls\.key_path: .*key\.pem is open to other users: chmod o-rwx/ }, `mode ${mode.toString(8)}`)
  }
  chmodSync(key, 0o640)
  const { node } = await attempt()
  t.pass('mode 640: served')
  await node.close()
})

import t from 'tap'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../../src/cli/run-cli.js'
import { isCanonicalPublicKey, keyPairFromSecret, readKeyFile } from '../../src/identity/index.js'
import { io } from '../helpers/cli-io.js'

t.test('circles keygen', async (t) => {
  t.test('prints a new key pair as JSON', async (t) => {
    const cap = io()
    t.equal(await runCli(['keygen'], cap.io), 0)
    const printed = JSON.parse(cap.out.stdout)
    t.ok(isCanonicalPublicKey(printed.public_key))
    t.equal(keyPairFromSecret(printed.secret_key).publicKey, printed.public_key)
  })

  t.test('writes a 0600 key file with --out and prints only the public key', async (t) => {
    const path = join(t.testdir(), 'me.key')
    const cap = io()
    t.equal(await runCli(['keygen', '--out', path], cap.io), 0)
    const printed = JSON.parse(cap.out.stdout)
    t.same(Object.keys(printed).sort(), ['key_file', 'public_key'])
    t.equal((await readKeyFile(path)).publicKey, printed.public_key)
    t.equal((await stat(path)).mode & 0o777, 0o600)
  })

  t.test('refuses unknown options with USAGE', async (t) => {
    await t.rejects(runCli(['keygen', '--bogus'], io().io), { code: 'USAGE', message: /bogus/ })
  })
})

t.test('circles <command>', async (t) => {
  t.test('prints usage for help', async (t) => {
    const cap = io()
    t.equal(await runCli(['help'], cap.io), 0)
    t.match(cap.out.stdout, /Usage: circles/)
  })
  t.test('refuses an unknown command with USAGE', async (t) => {
    await t.rejects(runCli(['frobnicate'], io().io), { code: 'USAGE', message: /frobnicate/ })
  })
})

t.test('circles launch options', async (t) => {
  const cases: [string[], RegExp][] = [
    [['launch', '--sandbox-processes', '0'], /--sandbox-processes must be a positive integer/],
    [['launch', '--sandbox-isolation', 'vm'], /--sandbox-isolation must be "process" or "thread"/],
    [['launch', '--redis-url', 'redis://127.0.0.1', '--cluster-secret', 'short'], /--redis-url needs a cluster secret of at least 16 bytes/],
    [['launch', '--colour'], /Unknown option '--colour'/],
    [['launch', '--plays-per-second', '0'], /--plays-per-second must be a positive integer/],
    [['launch', '--connections-per-address', 'many'], /--connections-per-address must be a positive integer/],
    [['launch', '--no-load-limits', '--nonces-per-minute', '5'], /--no-load-limits cannot be combined/],
    [['launch', '--domain', 'circle.example/x'], /--domain "circle\.example\/x" must be a host name or address/],
    [['launch', '--domain', 'a.example', '--domain', 'a.example'], /--domain "a\.example" lists a\.example twice/],
    [['launch', '--allowed-origin', 'app.example'], /--allowed-origin "app\.example" must be "\*" or an origin/],
    [['worker', '--redis-url', 'redis://127.0.0.1', '--cluster-secret', 'a-secret-of-16-bytes', '--domain', 'x..'], /--domain "x\.\." must be/],
    [['launch', '--frames-per-second', '0'], /--frames-per-second must be a positive integer/],
    [['launch', '--frame-bytes-per-second', '1.5'], /--frame-bytes-per-second must be a positive integer/],
    [['launch', '--invalid-frames-per-minute', ''], /--invalid-frames-per-minute must be a positive integer/],
    [['launch', '--trusted-proxy', 'proxy.local'], /--trusted-proxy "proxy\.local" is not an IP address or a CIDR range/],
    [['launch', '--trusted-proxy', '10.0.0.0/8', '--trusted-proxy', '10.0.0.0/40'], /--trusted-proxy "10\.0\.0\.0\/40"/],
  ]
  for (const [argv, message] of cases) await t.rejects(runCli(argv, io().io), { code: 'USAGE', message }, argv.join(' '))
})

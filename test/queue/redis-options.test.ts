import t from 'tap'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { redisOptionsFrom } from '../../src/cli/redis-options.js'
import { runCli } from '../../src/cli/run-cli.js'
import { parseRedisTarget, redactRedisUrl } from '../../src/queue/index.js'

t.test('parseRedisTarget', async (t) => {
  t.same(parseRedisTarget(['redis://127.0.0.1:6379']), { type: 'single', url: 'redis://127.0.0.1:6379' })
  t.same(parseRedisTarget(['rediss://:pw@cache.example:6380/2']), { type: 'single', url: 'rediss://:pw@cache.example:6380/2' })
  t.same(parseRedisTarget(['redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002']), {
    type: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
    username: 'u',
    password: 'p@ss',
  })
  t.same(parseRedisTarget(['redis://a:7000', 'redis://b']), { type: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 6379 }], tls: false }, 'several URLs are seed nodes')
  t.match(parseRedisTarget(['rediss+cluster://a:1,b:2']), { type: 'cluster', tls: true })
  const bad: [string[], RegExp][] = [
    [[], /required/],
    [['localhost:6379'], /not a URL/],
    [['http://x'], /scheme/],
    [['redis://a:1,b:2'], /redis\+cluster/],
    [['redis+cluster://a:99999'], /host:port/],
    [['redis+cluster://'], /no host/],
    [['rediss://a', 'redis://b'], /mix of TLS/],
  ]
  for (const [urls, message] of bad) t.throws(() => parseRedisTarget(urls), { code: 'USAGE', message }, urls.join(' '))
  t.equal(redactRedisUrl('redis://user:secret@h:1'), 'redis://user:***@h:1')
})

t.test('redisOptionsFrom (launch and worker flags)', async (t) => {
  t.equal(redisOptionsFrom('launch', {}), undefined, 'no --redis-url: nothing connects to Redis')
  t.throws(() => redisOptionsFrom('launch', { 'cluster-secret': 'x'.repeat(16) }), { code: 'USAGE', message: /--cluster-secret needs --redis-url/ })
  const saved = process.env['CIRCLES_CLUSTER_SECRET']
  delete process.env['CIRCLES_CLUSTER_SECRET']
  t.teardown(() => {
    if (saved !== undefined) process.env['CIRCLES_CLUSTER_SECRET'] = saved
  })
  t.throws(() => redisOptionsFrom('launch', { 'redis-url': ['redis://h'] }), { code: 'USAGE', message: /cluster secret of at least 16 bytes/ })
  t.throws(() => redisOptionsFrom('launch', { 'redis-url': ['redis://h'], 'cluster-secret': 'short' }), { code: 'USAGE' })
  t.throws(() => redisOptionsFrom('launch', { 'redis-url': ['redis://h'], 'cluster-secret': 'x'.repeat(16), 'redis-prefix': 'a{b' }), { code: 'USAGE', message: /--redis-prefix/ })
  t.throws(() => redisOptionsFrom('launch', { 'redis-url': ['redis://h'], 'cluster-secret': 'x'.repeat(16), 'queue-allowance-ms': '0' }), { code: 'USAGE', message: /--queue-allowance-ms/ })
  t.match(redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret': 'x'.repeat(16), 'queue-allowance-ms': '2500' }), { prefix: 'rhailib:', queueAllowanceMs: 2500, target: { type: 'single' } })
  process.env['CIRCLES_CLUSTER_SECRET'] = 'y'.repeat(20)
  t.match(redisOptionsFrom('launch', { 'redis-url': ['redis://h'] }), { secret: 'y'.repeat(20) }, 'the secret from the environment')
  t.equal(process.env['CIRCLES_CLUSTER_SECRET'], undefined, 'and out of the environment once read: nothing the node starts inherits it')
  process.env['CIRCLES_CLUSTER_SECRET'] = 'y'.repeat(20)
  redisOptionsFrom('launch', { 'redis-url': ['redis://h'], 'cluster-secret': 'x'.repeat(16) })
  t.equal(process.env['CIRCLES_CLUSTER_SECRET'], undefined, 'even when an option gives the secret')
})

t.test('--cluster-secret-file', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'secret')
  writeFileSync(file, 'z'.repeat(24) + '\r\n\n', { mode: 0o600 })
  t.match(redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret-file': file }), { secret: 'z'.repeat(24) }, 'its text without trailing line breaks')
  t.throws(() => redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret-file': file, 'cluster-secret': 'x'.repeat(16) }), { code: 'USAGE', message: /not both/ })
  t.throws(() => redisOptionsFrom('worker', { 'cluster-secret-file': file }), { code: 'USAGE', message: /--cluster-secret-file needs --redis-url/ })
  t.throws(() => redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret-file': join(dir, 'missing') }), { code: 'USAGE', message: /cannot read --cluster-secret-file .*ENOENT/ })
  chmodSync(file, 0o640)
  t.throws(() => redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret-file': file }), { code: 'USAGE', message: /must not be readable by group or others \(chmod 600/ })
  const short = join(dir, 'short')
  writeFileSync(short, 'short\n', { mode: 0o600 })
  t.throws(() => redisOptionsFrom('worker', { 'redis-url': ['redis://h'], 'cluster-secret-file': short }), { code: 'USAGE', message: /at least 16 bytes/ })
})

t.test('circles worker without --redis-url is a usage error', async (t) => {
  const io = { stdout: new PassThrough(), stderr: new PassThrough() }
  await t.rejects(runCli(['worker', '--db-path', t.testdir()], io), { code: 'USAGE', message: /--redis-url is required/ })
  await t.rejects(runCli(['worker', '--redis-url', 'redis://h', '--cluster-secret', 'x'.repeat(16), '--circle-public-key', 'nope'], io), {
    code: 'USAGE',
    message: /--circle-public-key/,
  })
})

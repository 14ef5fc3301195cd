/**
 * servingOptionsFrom, allowedOriginsFrom and defaultDbPath: what the serving flags of `launch`
 * and `worker` become, and the USAGE error (naming the command and the flag) for each bad one.
 */
import t from 'tap'
import { DEFAULT_ADMIN_PORT, NODE_OPTIONS, allowedOriginsFrom, defaultDbPath, servingOptionsFrom } from '../../src/cli/node-options.js'
import { io } from '../helpers/cli-io.js'

type Values = Parameters<typeof servingOptionsFrom>[1]

function serving(values: Values) {
  return servingOptionsFrom('launch', values, io().io)
}

function usage(values: Values): string | undefined {
  try {
    serving(values)
  } catch (error) {
    if ((error as { code?: string }).code === 'USAGE') return (error as Error).message
    throw error
  }
  return undefined
}

t.test('defaults', async (t) => {
  const saved = { db: process.env['CIRCLES_DB_PATH'], level: process.env['CIRCLES_LOG_LEVEL'] }
  delete process.env['CIRCLES_DB_PATH']
  delete process.env['CIRCLES_LOG_LEVEL']
  t.teardown(() => {
    for (const [name, value] of [['CIRCLES_DB_PATH', saved.db], ['CIRCLES_LOG_LEVEL', saved.level]] as const) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })
  const o = serving({})
  t.equal(o.dbPath, './data')
  t.same(o.sandbox, {})
  t.same(o.limits, {})
  t.same(o.trustedProxies, [])
  t.same(o.admin, { port: DEFAULT_ADMIN_PORT, host: '127.0.0.1' })
  t.equal(DEFAULT_ADMIN_PORT, 9464)
  t.same(o.domains, [])
  t.equal(o.log.level, 'info')
  process.env['CIRCLES_DB_PATH'] = '/srv/circles'
  process.env['CIRCLES_LOG_LEVEL'] = 'debug'
  t.equal(defaultDbPath(), '/srv/circles')
  const fromEnv = serving({})
  t.equal(fromEnv.dbPath, '/srv/circles')
  t.equal(fromEnv.log.level, 'debug')
  process.env['CIRCLES_LOG_LEVEL'] = 'loud'
  t.equal(usage({}), 'CIRCLES_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")', 'a bad level in the environment names the variable')
  t.equal(serving({ 'log-level': 'warn' }).log.level, 'warn', 'the flag wins over the environment')
})

t.test('every flag read', async (t) => {
  const o = serving({
    'db-path': '/db',
    'sandbox-processes': '3',
    'sandbox-isolation': 'thread',
    'log-level': 'silent',
    'admin-port': '0',
    'admin-host': '::1',
    'plays-per-second': '10',
    'connections-per-address': '2',
    'invalid-frames-per-minute': '5',
    'limits-loopback': true,
    'trusted-proxy': ['10.0.0.1', '192.168.0.0/16'],
    domain: ['circle.example', 'wss://edge.example'],
  })
  t.equal(o.dbPath, '/db')
  t.same(o.sandbox, { processes: 3, isolation: 'thread' })
  t.same(o.limits, { playsPerSecond: 10, connectionsPerAddress: 2, invalidFramesPerMinute: 5, loopback: true })
  t.same(o.trustedProxies, ['10.0.0.1', '192.168.0.0/16'])
  t.same(o.admin, { port: 0, host: '::1' })
  t.same(o.domains, ['circle.example', 'wss://edge.example'])
  t.equal(o.log.level, 'silent')
  t.same(serving({ 'no-admin': true }).admin, undefined)
  t.same(serving({ 'no-load-limits': true }).limits, { enabled: false })
  t.same(serving({ 'sandbox-isolation': 'process' }).sandbox, { isolation: 'process' })
})

t.test('each bad flag is a USAGE error naming the command and the flag', async (t) => {
  const cases: [Values, string][] = [
    [{ 'sandbox-processes': '0' }, 'launch: --sandbox-processes must be a positive integer'],
    [{ 'sandbox-processes': '2.5' }, 'launch: --sandbox-processes must be a positive integer'],
    [{ 'sandbox-isolation': 'vm' }, 'launch: --sandbox-isolation must be "process" or "thread"'],
    [{ 'admin-port': '65536' }, 'launch: --admin-port must be an integer from 0 to 65535'],
    [{ 'admin-port': '-1' }, 'launch: --admin-port must be an integer from 0 to 65535'],
    [{ 'admin-port': ' ' }, 'launch: --admin-port must be an integer from 0 to 65535'],
    [{ 'admin-port': '80x' }, 'launch: --admin-port must be an integer from 0 to 65535'],
    [{ 'no-admin': true, 'admin-port': '1' }, 'launch: --no-admin cannot be combined with --admin-port or --admin-host'],
    [{ 'no-admin': true, 'admin-host': '0.0.0.0' }, 'launch: --no-admin cannot be combined with --admin-port or --admin-host'],
    [{ 'plays-per-second': '0' }, 'launch: --plays-per-second must be a positive integer'],
    [{ 'frame-bytes-per-second': 'lots' }, 'launch: --frame-bytes-per-second must be a positive integer'],
    [{ 'no-load-limits': true, 'plays-per-second': '5' }, 'launch: --no-load-limits cannot be combined with other load-limit options'],
    [{ 'no-load-limits': true, 'limits-loopback': true }, 'launch: --no-load-limits cannot be combined with other load-limit options'],
    [{ 'trusted-proxy': ['10.0.0.0/33'] }, 'launch: --trusted-proxy "10.0.0.0/33" is not an IP address or a CIDR range'],
    [{ 'trusted-proxy': ['proxy.example'] }, 'launch: --trusted-proxy "proxy.example" is not an IP address or a CIDR range'],
    [{ 'log-level': 'verbose' }, 'launch: --log-level must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")'],
  ]
  for (const [values, message] of cases) t.equal(usage(values), message, JSON.stringify(values))
  t.match(usage({ domain: ['ok.example', 'https://bad.example'] }), /^launch: --domain "https:\/\/bad\.example" must be a host name/)
  t.match(usage({ domain: ['a.example', 'A.example'] }), /^launch: --domain "A\.example" lists a\.example twice$/)
})

t.test('allowedOriginsFrom', async (t) => {
  t.same(allowedOriginsFrom('launch', undefined), [])
  t.same(allowedOriginsFrom('launch', ['*', 'https://app.example']), ['*', 'https://app.example'])
  t.throws(() => allowedOriginsFrom('launch', ['https://app.example', 'app.example']), {
    code: 'USAGE',
    message: 'launch: --allowed-origin "app.example" must be "*" or an origin: http(s)://host[:port], no path',
  })
})

t.test('NODE_OPTIONS: every load-limit flag servingOptionsFrom reads is declared', async (t) => {
  for (const flag of ['connections-per-address', 'nonces-per-minute', 'failed-auth-per-minute', 'plays-per-second', 'frames-per-second', 'frame-bytes-per-second', 'invalid-frames-per-minute']) {
    t.equal(NODE_OPTIONS[flag as keyof typeof NODE_OPTIONS]?.type, 'string', flag)
    t.equal(usage({ [flag]: '0' }), `launch: --${flag} must be a positive integer`, `${flag} is read`)
  }
})

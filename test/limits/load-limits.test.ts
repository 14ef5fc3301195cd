/**
 * LoadLimits on a stepped clock (the `Clock` seam): every budget's burst, its refill and the
 * retry_after_ms it answers with, the crash quarantine, which addresses the limits apply to, and
 * option validation. Time moves only when a test moves it.
 */
import t from 'tap'
import { LoadLimits, SYSTEM_CLOCK, isLoopback, type Clock, type LoadLimitOptions } from '../../src/limits/index.js'

function steppedClock(): Clock & { advance(ms: number): void } {
  let now = 5_000
  return {
    now: () => now,
    setTimeout: () => {
      throw new Error('LoadLimits schedules nothing')
    },
    clearTimeout: () => {},
    advance: (ms: number) => {
      now += ms
    },
  }
}

const REMOTE = '203.0.113.7'
const OTHER = '198.51.100.9'

function limits(options: LoadLimitOptions = {}) {
  const clock = steppedClock()
  return { clock, limits: new LoadLimits(options, clock) }
}

t.test('isLoopback: IPv4 127/8, ::1 and IPv4-mapped loopback; nothing else', async (t) => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) t.equal(isLoopback(a), true, a)
  for (const a of ['10.0.0.1', '::2', '::ffff:10.0.0.1', 'localhost', '', '127.example', '1127.0.0.1']) t.equal(isLoopback(a), false, a)
})

t.test('connections per address: refused past the limit, freed by disconnected', async (t) => {
  const { limits: l } = limits({ connectionsPerAddress: 2 })
  t.equal(l.connect(REMOTE), undefined)
  t.equal(l.connect(REMOTE), undefined)
  const refused = l.connect(REMOTE)
  t.equal(refused?.code, 'RATE_LIMITED')
  t.same(refused?.details, { limit: 'connections', retry_after_ms: 1_000 })
  t.equal(l.connect(OTHER), undefined, 'another address has its own count')
  l.disconnected(REMOTE)
  t.equal(l.connect(REMOTE), undefined, 'one closed: one more may open')
  t.equal(l.connect(REMOTE)?.code, 'RATE_LIMITED')
  l.disconnected(REMOTE)
  l.disconnected(REMOTE)
  l.disconnected(REMOTE)
  l.disconnected(REMOTE)
  t.equal(l.connect(REMOTE), undefined, 'extra disconnects do not bank connections')
  t.equal(l.connect(REMOTE), undefined)
  t.equal(l.connect(REMOTE)?.code, 'RATE_LIMITED', 'still two at most')
})

t.test('loopback is exempt unless asked; enabled: false exempts everyone', async (t) => {
  const exempt = limits({ connectionsPerAddress: 1 }).limits
  t.equal(exempt.applies('127.0.0.1'), false)
  t.equal(exempt.applies(REMOTE), true)
  for (let i = 0; i < 5; i++) t.equal(exempt.connect('::1'), undefined)
  const strict = limits({ connectionsPerAddress: 1, loopback: true }).limits
  t.equal(strict.applies('127.0.0.1'), true)
  t.equal(strict.connect('127.0.0.1'), undefined)
  t.equal(strict.connect('127.0.0.1')?.code, 'RATE_LIMITED')
  const off = limits({ connectionsPerAddress: 1, playsPerSecond: 1, enabled: false }).limits
  t.equal(off.enabled, false)
  t.equal(off.applies(REMOTE), false)
  t.equal(off.connect(REMOTE), undefined)
  t.equal(off.connect(REMOTE), undefined)
  t.equal(off.play('', REMOTE, 'c'), undefined)
  t.equal(off.play('', REMOTE, 'c'), undefined)
})

t.test('nonces per minute: a burst, then one every 60/n seconds', async (t) => {
  const { clock, limits: l } = limits({ noncesPerMinute: 3 })
  for (let i = 0; i < 3; i++) t.equal(l.nonce(REMOTE), undefined)
  const refused = l.nonce(REMOTE)
  t.same(refused?.details, { limit: 'nonces', retry_after_ms: 20_000 })
  clock.advance(19_999)
  t.equal(l.nonce(REMOTE)?.code, 'RATE_LIMITED', '1 ms early')
  clock.advance(1)
  t.equal(l.nonce(REMOTE), undefined, 'after exactly retry_after_ms')
  t.equal(l.nonce(OTHER), undefined, 'per address')
})

t.test('failed authentications: past the limit, authenticate and fetch_nonce are refused until they refill', async (t) => {
  const { clock, limits: l } = limits({ failedAuthPerMinute: 2 })
  t.equal(l.authenticate(REMOTE), undefined)
  l.authFailed(REMOTE)
  t.equal(l.authenticate(REMOTE), undefined, 'one failure left')
  l.authFailed(REMOTE)
  const refused = l.authenticate(REMOTE)
  t.same(refused?.details, { limit: 'failed_auth', retry_after_ms: 30_000 })
  t.same(l.nonce(REMOTE)?.details, { limit: 'failed_auth', retry_after_ms: 30_000 }, 'fetch_nonce says why too')
  t.equal(l.authenticate(OTHER), undefined, 'another address is not blamed')
  clock.advance(30_000)
  t.equal(l.authenticate(REMOTE), undefined, 'one failure refilled')
  t.equal(l.nonce(REMOTE), undefined)
  l.authFailed('127.0.0.1')
  l.authFailed('127.0.0.1')
  l.authFailed('127.0.0.1')
  t.equal(l.authenticate('127.0.0.1'), undefined, 'loopback failures are not counted')
})

t.test('plays per second: by caller key, or by address when anonymous', async (t) => {
  const { clock, limits: l } = limits({ playsPerSecond: 2 })
  t.equal(l.play('key-a', REMOTE, 'c'), undefined)
  t.equal(l.play('key-a', OTHER, 'c'), undefined, 'a key is one caller from any address')
  t.same(l.play('key-a', REMOTE, 'c')?.details, { limit: 'plays', retry_after_ms: 500 })
  t.equal(l.play('', REMOTE, 'c'), undefined, 'anonymous plays from the address have a budget of their own')
  t.equal(l.play('', REMOTE, 'c'), undefined)
  t.equal(l.play('', REMOTE, 'c')?.code, 'RATE_LIMITED')
  t.equal(l.play('', OTHER, 'c'), undefined)
  clock.advance(500)
  t.equal(l.play('key-a', REMOTE, 'c'), undefined)
  t.equal(l.play('', REMOTE, 'c'), undefined)
})

t.test('frames: counted and weighed per address; the longer wait names its budget', async (t) => {
  const { clock, limits: l } = limits({ framesPerSecond: 2, frameBytesPerSecond: 1_000 })
  t.equal(l.frame(REMOTE, 10), undefined)
  t.equal(l.frame(REMOTE, 10), undefined)
  t.same(l.frame(REMOTE, 10), { limit: 'frames', waitMs: 500 }, 'the third frame in a second')
  clock.advance(1_000)
  t.equal(l.frame(REMOTE, 10), undefined, 'a second later the frames are back (the debt is repaid)')
  t.same(l.frame(OTHER, 3_000), { limit: 'frame_bytes', waitMs: 2_000 }, 'a frame 2,000 bytes over: two seconds of bytes')
  clock.advance(2_000)
  t.same(l.frame(OTHER, 1), { limit: 'frame_bytes', waitMs: 1 }, 'the debt repaid, a byte more is a new one')
  clock.advance(2)
  t.equal(l.frame(OTHER, 1), undefined, 'with a byte of credit, a byte goes')
  t.equal(l.frame('127.0.0.1', 1e9), undefined, 'loopback is exempt')
})

t.test('invalid frames: a per-socket budget; a closed socket forgets it', async (t) => {
  const { limits: l } = limits({ invalidFramesPerMinute: 2 })
  t.equal(l.invalidFrame('s1', REMOTE), undefined)
  t.equal(l.invalidFrame('s1', REMOTE), undefined)
  const refused = l.invalidFrame('s1', REMOTE)
  t.equal(refused?.code, 'RATE_LIMITED')
  t.same(refused?.details, { limit: 'invalid_frames', retry_after_ms: 30_000 })
  t.equal(l.invalidFrame('s2', REMOTE), undefined, 'another socket of the same address has its own')
  l.socketClosed('s1')
  t.equal(l.invalidFrame('s1', REMOTE), undefined, 'a new socket under an old id starts full')
})

t.test('the crash quarantine: the origin in the circle, doubling; applies to loopback and with limits off', async (t) => {
  for (const options of [{ loopback: false }, { enabled: false }] as LoadLimitOptions[]) {
    const { clock, limits: l } = limits({ ...options, quarantineBaseMs: 1_000, quarantineMaxMs: 3_000 })
    t.same(l.crashed('circle', '127.0.0.1'), { originMs: 1_000, origins: 1, circleMs: undefined })
    const refused = l.play('key', '127.0.0.1', 'circle')
    t.equal(refused?.code, 'RATE_LIMITED')
    t.same(refused?.details, { limit: 'quarantine', retry_after_ms: 1_000, scope: 'origin' })
    t.equal(l.quarantined, 1)
    t.equal(l.play('key', '127.0.0.1', 'other circle'), undefined, 'other circles are open to it')
    t.equal(l.play('key', '127.0.0.2', 'circle'), undefined, 'others use the circle')
    clock.advance(1_000)
    t.equal(l.play('key', '127.0.0.1', 'circle'), undefined, 'the back-off served')
    t.equal(l.quarantined, 0)
    t.equal(l.crashed('circle', '127.0.0.1').originMs, 2_000, 'the second crash doubles it')
    clock.advance(2_000)
    t.equal(l.crashed('circle', '127.0.0.1').originMs, 3_000, 'capped at quarantineMaxMs')
  }
})

t.test('the crash quarantine of a whole circle after crashes from several origins', async (t) => {
  const { clock, limits: l } = limits({ quarantineCircleOrigins: 2, quarantineBaseMs: 1_000, quarantineWindowMs: 10_000 })
  t.equal(l.crashed('c', REMOTE).circleMs, undefined)
  clock.advance(5_000)
  t.same(l.crashed('c', OTHER), { originMs: 1_000, origins: 2, circleMs: 1_000 })
  const refused = l.refusal('c', '192.0.2.1')
  t.same(refused?.details, { limit: 'quarantine', retry_after_ms: 1_000, scope: 'circle' })
  t.equal(l.play('', '192.0.2.1', 'c')?.code, 'RATE_LIMITED', 'a bystander is refused too')
  clock.advance(1_000)
  t.equal(l.refusal('c', '192.0.2.1'), undefined)
  clock.advance(10_001)
  t.same(l.crashed('c', '192.0.2.1'), { originMs: 1_000, origins: 1, circleMs: undefined }, 'crashes past the window are forgotten')
})

t.test('a call costs a play of the calling context and of the client address', async (t) => {
  const { clock, limits: l } = limits({ playsPerSecond: 2 })
  t.equal(l.call('ctx', undefined), undefined, 'a local caller: only the quarantine applies')
  t.equal(l.call('ctx', undefined), undefined)
  t.equal(l.call('ctx', undefined), undefined)
  t.equal(l.call('ctx', REMOTE), undefined)
  t.equal(l.call('ctx', REMOTE), undefined)
  const refused = l.call('ctx', REMOTE)
  t.same(refused?.details, { limit: 'plays', retry_after_ms: 500 })
  t.equal(l.play('', REMOTE, 'c')?.code, 'RATE_LIMITED', "the address's anonymous plays paid for the calls")
  t.equal(l.call('ctx2', REMOTE)?.code, 'RATE_LIMITED', 'another context called from the spent address')
  t.equal(l.call('ctx3', OTHER), undefined)
  clock.advance(500)
  t.equal(l.call('ctx', REMOTE), undefined)
  l.crashed('ctx', OTHER)
  t.same(l.call('ctx', OTHER)?.details, { limit: 'quarantine', retry_after_ms: 1_000, scope: 'origin' })
})

t.test('options: positive integers, named on refusal', async (t) => {
  for (const [key, value] of [['playsPerSecond', 0], ['framesPerSecond', 1.5], ['quarantineBaseMs', -1], ['connectionsPerAddress', Number.NaN]] as const) {
    t.throws(() => new LoadLimits({ [key]: value }, steppedClock()), { code: 'INVALID_OPTION', message: `options.limits.${key} must be a positive integer` }, `${key}: ${value}`)
  }
})

t.test('SYSTEM_CLOCK: a monotonic now, timers that fire, and clearTimeout that cancels', async (t) => {
  const a = SYSTEM_CLOCK.now()
  const b = SYSTEM_CLOCK.now()
  t.ok(b >= a, 'now never goes back')
  const fired: string[] = []
  await new Promise<void>((resolve) => {
    const cancelled = SYSTEM_CLOCK.setTimeout(() => fired.push('cancelled'), 0)
    SYSTEM_CLOCK.setTimeout(() => {
      fired.push('kept')
      resolve()
    }, 1)
    SYSTEM_CLOCK.clearTimeout(cancelled)
  })
  t.same(fired, ['kept'])
})

import t from 'tap'
import { configKeyOf, flagOf, isPositiveInteger, parsePositiveInteger } from '../../src/config/index.js'

t.test('a limit has one name; its config key and flag are spelt from it', async (t) => {
  t.equal(configKeyOf('timeoutMs'), 'timeout_ms')
  t.equal(configKeyOf('maxNotifyValueBytes'), 'max_notify_value_bytes')
  t.equal(configKeyOf('memoryMb'), 'memory_mb')
  t.equal(flagOf('connectionsPerAddress'), 'connections-per-address')
  t.equal(flagOf('failedAuthPerMinute'), 'failed-auth-per-minute')
  t.equal(flagOf('frameBytesPerSecond'), 'frame-bytes-per-second')
})

t.test('the positive-integer rule', async (t) => {
  for (const good of [1, 2, 1_000_000]) t.ok(isPositiveInteger(good), String(good))
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3', null, undefined]) t.notOk(isPositiveInteger(bad), String(bad))
  t.ok(isPositiveInteger(10, 10), 'the bound itself')
  t.notOk(isPositiveInteger(11, 10), 'past the bound')
  t.equal(parsePositiveInteger('8'), 8)
  for (const bad of ['', ' ', '0', '-1', '1.5', 'x']) t.equal(parsePositiveInteger(bad), undefined, JSON.stringify(bad))
})

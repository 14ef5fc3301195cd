/**
 * Who a connection is from: IPv6 addresses are grouped by /64 for every per-address limit, and a
 * forwarded-for header is honoured only from a configured trusted proxy.
 */
import t from 'tap'
import { ClientAddresses, originOf } from '../../src/limits/index.js'

t.test('originOf groups IPv6 by /64 and leaves IPv4 alone', async (t) => {
  t.equal(originOf('203.0.113.7'), '203.0.113.7')
  t.equal(originOf('::ffff:203.0.113.7'), '203.0.113.7', 'IPv4-mapped')
  t.equal(originOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(originOf('2001:db8:1:2::99'), '2001:db8:1:2::/64', 'compressed')
  t.equal(originOf('2001:DB8:0001:0002:ffff::'), '2001:db8:1:2::/64', 'case and leading zeros')
  t.equal(originOf('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(originOf('fe80::1%eth0'), 'fe80:0:0:0::/64', 'zone id dropped')
  t.equal(originOf('::ffff:7f00:1'), '127.0.0.1', 'IPv4-mapped in hex')
  t.equal(originOf('::1'), '::1', 'loopback stays itself (it is exempt by address)')
  t.equal(originOf('64:ff9b::203.0.113.7'), '64:ff9b:0:0::/64', 'an embedded IPv4 tail')
  t.equal(originOf(''), '', 'an unknown address is kept')
})

t.test('without trusted proxies the socket peer is the client, whatever the header says', async (t) => {
  const clients = new ClientAddresses()
  t.same(clients.of('198.51.100.1', '203.0.113.7'), { address: '198.51.100.1', origin: '198.51.100.1' })
  t.same(clients.of('::ffff:127.0.0.1', undefined), { address: '127.0.0.1', origin: '127.0.0.1' })
})

t.test('the header is read from a trusted proxy only, from the right', async (t) => {
  const clients = new ClientAddresses(['127.0.0.1', '10.0.0.0/8', 'fd00::/8'])
  t.same(clients.of('127.0.0.1', '203.0.113.7'), { address: '203.0.113.7', origin: '203.0.113.7' })
  t.same(clients.of('::ffff:127.0.0.1', '203.0.113.7'), { address: '203.0.113.7', origin: '203.0.113.7' }, 'a mapped peer is matched as IPv4')
  t.same(clients.of('198.51.100.1', '203.0.113.7'), { address: '198.51.100.1', origin: '198.51.100.1' }, 'from an untrusted peer the header is ignored')
  t.equal(clients.of('127.0.0.1', '1.1.1.1, 203.0.113.7, 10.1.2.3').address, '203.0.113.7', 'trusted hops are skipped; the client forged the first entry')
  t.equal(clients.of('127.0.0.1', '1.1.1.1,203.0.113.7').address, '203.0.113.7', 'no spaces')
  t.equal(clients.of('127.0.0.1', '10.0.0.1, 10.0.0.2').address, '10.0.0.1', 'every hop trusted: the farthest')
  t.equal(clients.of('127.0.0.1', '203.0.113.7, not-an-address').address, '127.0.0.1', 'a garbled last hop: the proxy itself is counted')
  t.equal(clients.of('127.0.0.1', 'junk, 10.0.0.5').address, '10.0.0.5', 'a garbled hop past trusted ones: the last trusted hop')
  t.same(clients.of('fd00::1', '2001:db8:5:6::7'), { address: '2001:db8:5:6::7', origin: '2001:db8:5:6::/64' }, 'IPv6 proxy and client')
  t.equal(clients.of('127.0.0.1', '').address, '127.0.0.1', 'an empty header')
})

t.test('bad trusted-proxy entries are refused with INVALID_OPTION', async (t) => {
  for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/', '::/129', '1.2.3.4/8/8', '']) {
    t.throws(() => new ClientAddresses([bad]), { code: 'INVALID_OPTION' }, JSON.stringify(bad))
  }
  t.throws(() => new ClientAddresses('10.0.0.1' as unknown as string[]), { code: 'INVALID_OPTION' })
})

import { BlockList, isIP } from 'node:net'
import { circlesError } from '../errors/index.js'

/** Who a connection is from: its address (logged) and its origin (what per-address limits count). */
export interface ClientAddress {
  /** The client's address: the socket's peer, or what a trusted proxy forwarded. */
  readonly address: string
  /** The key of every per-address limit and of the crash quarantine: see {@link originOf}. */
  readonly origin: string
}

/** Hops of a forwarded-for header read at most, from the right. */
const MAX_FORWARDED_HOPS = 16

/** An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as the IPv4 address it is; other text as is. */
function unmapped(address: string): string {
  return address.length > 7 && address.slice(0, 7).toLowerCase() === '::ffff:' && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** The eight 16-bit groups of an IPv6 address (valid per `isIP`), zone id dropped. */
function ipv6Groups(address: string): number[] {
  const text = address.split('%')[0]!
  const [head = '', tail] = text.split('::') as [string, string | undefined]
  const parse = (part: string): number[] => {
    if (part === '') return []
    const groups: number[] = []
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number]
        groups.push((a << 8) | b, (c << 8) | d)
      } else groups.push(parseInt(piece, 16))
    }
    return groups
  }
  const left = parse(head)
  if (tail === undefined) return left
  const right = parse(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}

/**
 * The origin of an address, as per-address limits count it: an IPv4 address as is, an IPv6
 * address as its /64 (`2001:db8:1:2::/64`) — one subscriber usually holds a whole /64, so
 * counting single IPv6 addresses would give each client 2^64 budgets. IPv6 loopback stays
 * `::1`; IPv4-mapped addresses are their IPv4 address. Anything else (an unknown address) is
 * kept as it is.
 */
export function originOf(address: string): string {
  const a = unmapped(address)
  if (isIP(a) !== 6 || a === '::1') return a
  const groups = ipv6Groups(a)
  if (groups.slice(0, 6).every((g, i) => g === (i === 5 ? 0xffff : 0))) {
    return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`
}

/**
 * Resolves who a connection is from. Behind a reverse proxy every socket comes from the proxy,
 * so its `X-Forwarded-For` header is read — but only when the socket's peer is one of the
 * configured trusted proxies (anyone else could write the header). The header is read from the
 * right: the last address that is not a trusted proxy is the client; a hop that is not an IP
 * address ends the walk, and the last trusted hop is taken (the proxy is then counted, never a
 * forged name).
 *
 * @example
 * const clients = new ClientAddresses(['127.0.0.1', '10.0.0.0/8'])
 * clients.of('127.0.0.1', '203.0.113.7, 10.1.2.3') // → { address: '203.0.113.7', origin: '203.0.113.7' }
 */
export class ClientAddresses {
  private readonly trusted: BlockList | undefined

  /** `trustedProxies`: addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`); invalid entries throw INVALID_OPTION. */
  constructor(trustedProxies: readonly string[] = []) {
    if (!Array.isArray(trustedProxies)) throw circlesError('INVALID_OPTION', 'options.trustedProxies must be an array of addresses or CIDR ranges')
    if (trustedProxies.length === 0) return
    this.trusted = new BlockList()
    for (const entry of trustedProxies) {
      const [address = '', bits, extra] = String(entry).split('/')
      const type = isIP(address)
      const prefix = bits === undefined ? undefined : Number(bits)
      const maxBits = type === 4 ? 32 : 128
      if (type === 0 || extra !== undefined || (prefix !== undefined && (bits === '' || !Number.isInteger(prefix) || prefix < 0 || prefix > maxBits))) {
        throw circlesError('INVALID_OPTION', `options.trustedProxies: "${String(entry).slice(0, 64)}" is not an IP address or a CIDR range`)
      }
      const family = type === 4 ? 'ipv4' : 'ipv6'
      if (prefix === undefined) this.trusted.addAddress(address, family)
      else this.trusted.addSubnet(address, prefix, family)
    }
  }

  /** The client of a socket whose peer is `peer`, given the request's `X-Forwarded-For` header. */
  of(peer: string | undefined, forwardedFor: string | undefined): ClientAddress {
    let address = unmapped(peer ?? '')
    if (this.trusted !== undefined && forwardedFor !== undefined && this.isTrusted(address)) {
      const hops = forwardedFor.split(',')
      for (let i = hops.length - 1; i >= Math.max(0, hops.length - MAX_FORWARDED_HOPS); i--) {
        const hop = unmapped(hops[i]!.trim())
        if (isIP(hop) === 0) break
        address = hop
        if (!this.isTrusted(hop)) break
      }
    }
    return { address, origin: originOf(address) }
  }

  private isTrusted(address: string): boolean {
    const type = isIP(address)
    return type !== 0 && this.trusted!.check(address, type === 4 ? 'ipv4' : 'ipv6')
  }
}

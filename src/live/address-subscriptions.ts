import { circlesError, type CirclesError } from '../errors/index.js'

/**
 * Subscriptions held by the sockets of each remote address, across the node: one address may
 * not hold more than `max`, however many sockets it opens.
 */
export class AddressSubscriptions {
  readonly max: number
  private readonly held = new Map<string, number>()

  constructor(max: number) {
    this.max = max
  }

  /** Count one more for `address`, or the error to answer when it holds `max` already. */
  acquire(address: string): CirclesError | undefined {
    const n = this.held.get(address) ?? 0
    if (n >= this.max) {
      return circlesError('TOO_MANY_SUBSCRIPTIONS', `This address holds ${this.max} subscriptions already`, { limit: 'address', max: this.max })
    }
    this.held.set(address, n + 1)
    return undefined
  }

  release(address: string): void {
    const n = (this.held.get(address) ?? 0) - 1
    if (n > 0) this.held.set(address, n)
    else this.held.delete(address)
  }
}

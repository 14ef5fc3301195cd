import { circlesError, type CirclesError } from '../errors/index.js'

/**
 * The bytes of tasks a gateway node has stored in Redis and not yet got back, per caller address
 * and in all. A task's script sits in Redis from the moment it is queued until its owner
 * completes it (the completion drops it) or, unanswered, until its record expires: without a
 * bound, the plays one address may send at its play rate would fill Redis, and every cross-node
 * play with it.
 */
export class QueuedBytes {
  private readonly byAddress = new Map<string, number>()
  private total = 0

  constructor(
    private readonly perAddress: number,
    private readonly perGateway: number,
  ) {}

  /** Charge `bytes` to `address` ('' for a caller without one), or answer the OVERLOADED error to refuse the task with. */
  charge(address: string, bytes: number): CirclesError | undefined {
    const mine = this.byAddress.get(address) ?? 0
    if (mine + bytes > this.perAddress) {
      return circlesError('OVERLOADED', `This address has ${this.perAddress} bytes of scripts queued for other nodes at most: retry once some are answered`, {
        limit: this.perAddress,
        scope: 'address',
      })
    }
    if (this.total + bytes > this.perGateway) {
      return circlesError('OVERLOADED', `This node has ${this.perGateway} bytes of scripts queued for other nodes at most: retry later`, {
        limit: this.perGateway,
        scope: 'gateway',
      })
    }
    this.byAddress.set(address, mine + bytes)
    this.total += bytes
    return undefined
  }

  /** The bytes of a task charged to `address` left Redis (or never reached it). */
  release(address: string, bytes: number): void {
    const left = (this.byAddress.get(address) ?? 0) - bytes
    if (left > 0) this.byAddress.set(address, left)
    else this.byAddress.delete(address)
    this.total -= bytes
  }

  /** Bytes charged now, in all. */
  get bytes(): number {
    return this.total
  }
}

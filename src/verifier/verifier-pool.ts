import { Piscina } from 'piscina'
import { circlesError } from '../errors/index.js'
import type { Claimant, SignatureCheck } from '../identity/index.js'
import { workerUrl } from '../threads/index.js'
import { DEFAULTS, positiveIntegerOption } from '../config/index.js'
import type { VerifyTask } from './messages.js'

export interface VerifierOptions {
  /** Verification threads (default 1). */
  readonly threads?: number
  /** Checks allowed to wait; past this, verify() rejects with OVERLOADED. */
  readonly maxPending?: number
}

/**
 * EIP-191 signature checks off the event loop. ECDSA recovery costs milliseconds; done inline, a
 * flood of bad `authenticate` calls would stall every socket. Here it runs on a low-priority
 * thread with a bounded queue.
 *
 * @example
 * const check = await verifier.verify(nonce, signature, { type: 'pubkey', pubkey })
 * if (!check.ok) // answer INVALID_CREDENTIALS
 */
export class Verifier {
  private readonly piscina: Piscina<VerifyTask, SignatureCheck>
  private readonly maxPending: number
  private pending = 0

  constructor(options: VerifierOptions = {}) {
    const threads = positiveIntegerOption(options.threads, 1, 'threads')
    this.maxPending = positiveIntegerOption(options.maxPending, DEFAULTS.MAX_PENDING_VERIFICATIONS, 'maxPending')
    this.piscina = new Piscina<VerifyTask, SignatureCheck>({
      filename: workerUrl(import.meta.url, 'worker'),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      recordTiming: false,
    })
  }

  /** Checks waiting or running. */
  get queued(): number {
    return this.pending
  }

  /**
   * Verify `signature` over `message` for the claimed key or address; a valid check carries the
   * recovered public key. Rejects with OVERLOADED when the queue is full.
   */
  async verify(message: string, signature: string, claimant: Claimant): Promise<SignatureCheck> {
    if (this.pending >= this.maxPending) throw circlesError('OVERLOADED', 'Too many signature checks are waiting; retry later')
    this.pending++
    try {
      return await this.piscina.run({ type: 'verify', message, signature, claimant })
    } finally {
      this.pending--
    }
  }

  async close(): Promise<void> {
    await this.piscina.close()
  }
}

import { Piscina } from 'piscina'
import type { Worker } from 'node:worker_threads'
import { circlesError } from '../errors/index.js'
import { ExitListeners, type ChildHandle, type ExitReason } from '../supervisor/index.js'
import type { Claimant, SignatureCheck } from '../identity/index.js'
import { workerModule } from '../threads/index.js'
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
export class Verifier implements ChildHandle {
  private readonly piscina: Piscina<VerifyTask, SignatureCheck>
  private readonly maxPending: number
  private pending = 0
  private readonly exits = new ExitListeners()
  private ended = false

  constructor(options: VerifierOptions = {}) {
    const threads = positiveIntegerOption(options.threads, 1, 'threads')
    this.maxPending = positiveIntegerOption(options.maxPending, DEFAULTS.MAX_PENDING_VERIFICATIONS, 'maxPending')
    const worker = workerModule(import.meta.url, 'thread-entry', 'commonjs')
    this.piscina = new Piscina<VerifyTask, SignatureCheck>({
      filename: worker.url,
      ...(worker.threadExecArgv === undefined ? {} : { execArgv: worker.threadExecArgv }),
      env: worker.threadEnv,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      recordTiming: false,
    })
    this.piscina.on('error', (error: Error) => this.exit({ type: 'error', error }))
    // piscina replaces a thread that dies; the verifier reports it instead, as a supervised child.
    this.piscina.on('workerDestroy', () => {
      if (!this.ended) this.exit({ type: 'error', error: new Error('a verifier thread died') })
    })
  }

  /** The verification threads (for operators and tests). */
  get threads(): readonly Worker[] {
    return this.piscina.threads
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
    } catch (error) {
      // The check itself never throws: a rejection means the thread running it died. The
      // verifier reports its own death; its supervisor starts a new one.
      this.exit({ type: 'error', error: new Error(`verifier thread died: ${(error as Error).message}`) })
      throw circlesError('INTERNAL_ERROR', 'The signature verifier stopped; try again')
    } finally {
      this.pending--
    }
  }

  async close(): Promise<void> {
    this.ended = true
    await this.piscina.close()
  }

  /** ChildHandle: finish the checks in hand, then stop. */
  async stop(): Promise<void> {
    await this.close()
    this.exit({ type: 'normal' })
  }

  kill(): void {
    this.ended = true
    void this.piscina.destroy()
    this.exit({ type: 'error', error: new Error('verifier killed') })
  }

  onExit(listener: (reason: ExitReason) => void): void {
    this.exits.add(listener)
  }

  private exit(reason: ExitReason): void {
    if (reason.type === 'error' && !this.ended) {
      this.ended = true
      void this.piscina.destroy()
    }
    this.exits.exit(reason)
  }
}

import { circlesError, isCirclesError, type CirclesError } from '../errors/index.js'
import type { PublicKeyHex } from '../identity/index.js'
import { failedRun, type RunOutcome } from '../protocol/index.js'
import { checkCallRequest, type CallLimits, type CallRequest } from './call-request.js'
import { ChainBudgets } from './chain-budgets.js'

/** What a call becomes at the callee's context: the fields of a play, plus where it came from. */
export interface CalleeRequest {
  readonly caller: PublicKeyHex
  readonly script: string
  readonly origin?: string
  readonly timeoutMs?: number
  readonly chain: readonly string[]
  readonly chainId: string
  readonly deadline: number
  readonly signal?: AbortSignal
  /** Runs the workflow may still start once this call's run is counted (carried by a call to another node). */
  readonly runsLeft?: number
}

export interface CallRouterOptions extends CallLimits {
  /** Runs one workflow may start. */
  readonly maxRunsPerChain: number
  /** The entry point of a client's play: run the callee's script in a context this node hosts. */
  readonly dispatch: (target: PublicKeyHex, request: CalleeRequest) => Promise<RunOutcome>
  /** The node's rate limits and crash quarantine: the error that refuses the call, or undefined. */
  readonly admit?: (request: CallRequest) => CirclesError | undefined
  /** A call settled: `ok` or its error's code (metrics). */
  readonly settled?: (outcome: string) => void
  /** The clock deadlines are read against (milliseconds since the epoch). */
  readonly now?: () => number
}

/**
 * Routes the calls scripts make (`call(peer, script)`): checks each one, charges its workflow's
 * run budget, and hands it to the callee's context through the same entry point a client's play
 * uses. A call never rejects: it resolves with the callee's outcome, or with the refusal as an
 * outcome (FORBIDDEN, CALL_CYCLE, UNKNOWN_CIRCLE, …) that the caller's promise rejects with.
 */
export class CallRouter {
  private readonly options: CallRouterOptions
  private readonly budgets: ChainBudgets
  private readonly now: () => number

  constructor(options: CallRouterOptions) {
    this.options = options
    this.budgets = new ChainBudgets(options.maxRunsPerChain)
    this.now = options.now ?? Date.now
  }

  /** A run of workflow `chainId` that calls out holds the workflow's budget while it lives. */
  hold(chainId: string): void {
    this.budgets.hold(chainId)
  }

  release(chainId: string): void {
    this.budgets.release(chainId)
  }

  /** Workflows with calls under way (tests, metrics). */
  get workflows(): number {
    return this.budgets.size
  }

  async route(request: CallRequest, signal?: AbortSignal): Promise<RunOutcome> {
    const outcome = await this.attempt(request, signal)
    this.options.settled?.(outcome.code ?? 'ok')
    return outcome
  }

  /**
   * The entry for a call made on another node (src/queue/remote-calls.ts): its chain is checked
   * again here (shape, cycle, depth, time left) — the sending node's word is not taken for it —
   * and the callee runs holding the workflow's budget on this node, as spent as the call says
   * (`runsLeft`). The run itself was counted, and the node's rate limits charged, where the call
   * was made. Never rejects: a refusal is an outcome.
   */
  async enter(request: CallRequest, runsLeft: number, run: (target: PublicKeyHex, request: CalleeRequest) => Promise<RunOutcome>): Promise<RunOutcome> {
    const target = checkCallRequest(request, this.options)
    if (typeof target !== 'string') return refusal(target)
    if (request.deadline - this.now() <= 0) return failedRun('SCRIPT_TIMEOUT', 'call: the calling run had no time left')
    const { chainId } = request
    this.budgets.hold(chainId, this.options.maxRunsPerChain - runsLeft)
    try {
      return await run(target, {
        caller: request.caller,
        script: request.script,
        chain: request.chain,
        chainId,
        deadline: request.deadline,
        ...(request.origin === undefined ? {} : { origin: request.origin }),
        ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
      })
    } catch (error) {
      if (isCirclesError(error)) return refusal(error)
      return failedRun('INTERNAL_ERROR', 'call: the call could not be run')
    } finally {
      this.budgets.release(chainId)
    }
  }

  private async attempt(request: CallRequest, signal: AbortSignal | undefined): Promise<RunOutcome> {
    const target = checkCallRequest(request, this.options)
    if (typeof target !== 'string') return refusal(target)
    const remainingMs = request.deadline - this.now()
    if (remainingMs <= 0) return failedRun('SCRIPT_TIMEOUT', 'call: the calling run had no time left')
    const refused = this.options.admit?.(request)
    if (refused !== undefined) return refusal(refused)
    if (signal?.aborted === true) return failedRun('CALL_CANCELLED')
    if (!this.budgets.spend(request.chainId)) {
      return refusal(circlesError('CALL_BUDGET_EXCEEDED', `call: a workflow may start ${this.options.maxRunsPerChain} runs at most`, { limit: this.options.maxRunsPerChain }))
    }
    const { chainId } = request
    this.budgets.hold(chainId)
    try {
      return await this.options.dispatch(target, {
        caller: request.caller,
        script: request.script,
        chain: request.chain,
        chainId,
        deadline: request.deadline,
        runsLeft: this.budgets.left(chainId),
        ...(request.origin === undefined ? {} : { origin: request.origin }),
        ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
        ...(signal === undefined ? {} : { signal }),
      })
    } catch (error) {
      if (isCirclesError(error)) return refusal(error)
      return failedRun('INTERNAL_ERROR', 'call: the call could not be routed')
    } finally {
      this.budgets.release(chainId)
    }
  }
}

function refusal(error: CirclesError): RunOutcome {
  return failedRun(error.code, error.message)
}

/** Which budget a socket was cut for. */
export type SendBudgetName = 'socket' | 'address' | 'node'

export interface SendBudgetOptions {
  /** Bytes waiting for one socket, at most. */
  readonly perSocket: number
  /** Bytes waiting for the sockets of one origin, at most (where per-address limits apply). */
  readonly perAddress: number
  /** Bytes waiting for all sockets of the node, at most. */
  readonly perNode: number
  /** Whether per-address limits apply to an origin (loopback is exempt unless told otherwise). */
  readonly appliesTo: (origin: string) => boolean
}

/**
 * What a socket's owner does when its account goes over a budget. The first time (`final`
 * false) it drops what waits for the socket and closes it with a code; if the budget is still
 * over and this socket is again the one holding most, it is cut for good (`final` true) — its
 * account is closed by the budget then.
 */
export type CutHandler = (budget: SendBudgetName, final: boolean) => void

/** One socket's share of the send budget: charge every byte handed to it, credit it once sent. */
export class SendAccount {
  /** Bytes charged and not credited yet. */
  bytes = 0
  /** 'cut' once told to close; 'closed' once it holds nothing and counts no more. */
  state: 'open' | 'cut' | 'closed' = 'open'

  constructor(
    private readonly budget: SendBudget,
    readonly origin: string,
    readonly onCut: CutHandler,
  ) {}

  /** Bytes now waiting for this socket; over a budget, the socket holding most is cut. */
  charge(bytes: number): void {
    if (this.state !== 'closed') this.budget.charge(this, bytes)
  }

  /** Bytes that left (written to the socket, or dropped). */
  credit(bytes: number): void {
    if (this.state !== 'closed') this.budget.credit(this, bytes)
  }

  /** The socket is gone: whatever it still held counts no more. */
  close(): void {
    if (this.state !== 'closed') this.budget.close(this)
  }
}

/**
 * The bytes of answers (and any other message the gateway sends) that wait on sockets: written
 * by the node but not yet taken by the kernel, because the client does not read. One object for
 * the node: every sender charges it for what it hands a socket and credits it once the socket
 * has written it. Three budgets bound it — per socket, per origin and for the node — and past
 * one, the socket of that scope holding the most bytes is cut (a client that reads holds little;
 * one that does not read holds everything it asked for).
 *
 * @example
 * const budget = new SendBudget({ perSocket: 16 << 20, perAddress: 32 << 20, perNode: 64 << 20, appliesTo: () => true })
 * const account = budget.open('203.0.113.7', (budget, final) => (final ? ws.terminate() : closeSlowConsumer(budget)))
 * account.charge(text.length)
 */
export class SendBudget {
  private total = 0
  /** Accounts holding bytes (the candidates for a cut). */
  private readonly holding = new Set<SendAccount>()
  private readonly origins = new Map<string, { bytes: number; readonly accounts: Set<SendAccount> }>()

  constructor(private readonly options: SendBudgetOptions) {}

  /** An account for a new socket from `origin`. */
  open(origin: string, onCut: CutHandler): SendAccount {
    const account = new SendAccount(this, origin, onCut)
    let group = this.origins.get(origin)
    if (group === undefined) this.origins.set(origin, (group = { bytes: 0, accounts: new Set() }))
    group.accounts.add(account)
    return account
  }

  /** Bytes waiting on all sockets now. */
  get bytes(): number {
    return this.total
  }

  /** @internal (through {@link SendAccount.charge}) */
  charge(account: SendAccount, bytes: number): void {
    this.add(account, bytes)
    const { perSocket, perAddress, perNode } = this.options
    if (account.bytes > perSocket) this.cut(account, 'socket')
    const group = this.origins.get(account.origin)
    if (group !== undefined && group.bytes > perAddress && this.options.appliesTo(account.origin)) {
      this.cutLargest(group.accounts, () => group.bytes > perAddress, 'address')
    }
    if (this.total > perNode) this.cutLargest(this.holding, () => this.total > perNode, 'node')
  }

  /** @internal */
  credit(account: SendAccount, bytes: number): void {
    this.add(account, -Math.min(bytes, account.bytes))
  }

  /** @internal */
  close(account: SendAccount): void {
    this.add(account, -account.bytes)
    account.state = 'closed'
    const group = this.origins.get(account.origin)
    group?.accounts.delete(account)
    if (group !== undefined && group.accounts.size === 0) this.origins.delete(account.origin)
  }

  private add(account: SendAccount, bytes: number): void {
    account.bytes += bytes
    this.total += bytes
    const group = this.origins.get(account.origin)
    if (group !== undefined) group.bytes += bytes
    if (account.bytes > 0) this.holding.add(account)
    else this.holding.delete(account)
  }

  /** Cut the accounts holding most among `accounts` while `over()`; each is cut at most twice, so this ends. */
  private cutLargest(accounts: Iterable<SendAccount>, over: () => boolean, budget: SendBudgetName): void {
    while (over()) {
      let largest: SendAccount | undefined
      for (const account of accounts) if (account.bytes > 0 && account.state !== 'closed' && (largest === undefined || account.bytes > largest.bytes)) largest = account
      if (largest === undefined) return
      this.cut(largest, budget)
    }
  }

  private cut(account: SendAccount, budget: SendBudgetName): void {
    if (account.state === 'open') {
      account.state = 'cut'
      account.onCut(budget, false)
      return
    }
    account.onCut(budget, true)
    this.close(account)
  }
}

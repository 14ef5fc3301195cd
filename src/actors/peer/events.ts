/** Events of a peer context's lifecycle. */
export type PeerEvent =
  /** The mailbox went from empty to non-empty. */
  | { readonly type: 'WORK' }
  /** Stop: finish the batches being run, then stop. */
  | { readonly type: 'STOP' }

export interface PeerInput {
  readonly passivateAfterMs: number
  /** Hands the mailbox to the sandbox until it is empty; injected so that the machine is built once. */
  readonly drain: () => Promise<void>
  /** Whether subscribers watch the context now (it is then not passivated); none when absent. */
  readonly watched?: () => boolean
}

export interface PeerContext {
  readonly passivateAfterMs: number
  readonly drain: () => Promise<void>
  readonly watched: () => boolean
  /** Times this incarnation drained its mailbox. */
  readonly drains: number
  /** STOP arrived while work was running: stop when it ends. */
  readonly stopRequested: boolean
}

/** Events of a peer context's lifecycle. */
export type PeerEvent =
  /** The mailbox went from empty to non-empty. */
  | { readonly type: 'WORK' }
  /** Stop: finish the batch being run, then stop. */
  | { readonly type: 'STOP' }

export interface PeerInput {
  readonly passivateAfterMs: number
}

export interface PeerContext {
  readonly passivateAfterMs: number
  /** Batches completed by this incarnation. */
  readonly batches: number
  /** STOP arrived while a batch was running: stop when it ends. */
  readonly stopRequested: boolean
}

/** What the `runBatch` actor reports: whether the mailbox still holds tasks. */
export interface BatchOutput {
  readonly more: boolean
}

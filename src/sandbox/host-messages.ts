import type { ContextBatch, ContextBatchResult } from './messages.js'

/** Parent → sandbox host process. */
export type HostRequest =
  | { readonly type: 'run'; readonly id: number; readonly batches: readonly ContextBatch[] }
  | { readonly type: 'close' }

/** Sandbox host process → parent. */
export type HostReply =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly id: number; readonly results: readonly ContextBatchResult[] }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }

import { DEFAULTS } from '../config/index.js'
import { indexedNameBytes, NameIndex } from './name-index.js'

/**
 * The listing indexes of the namespaces one thread serves, under one memory budget.
 *
 * An index is built the first time its namespace is listed (one readdir) and kept up to date by
 * that namespace's writes and deletes — which all happen on this thread, the namespace's only
 * writer, so the index never goes stale. When the estimated total passes the budget, the least
 * recently listed indexes are dropped (rebuilt by their next listing). The index being used is
 * never dropped, so the bound is: at most max(budget, the largest single index) per thread; a
 * namespace's index is at most `maxDocuments` names (10,000 by default: under 4.5 MiB even with
 * 200-character names).
 *
 * Keyed by the store object, not by path: a new store for the same path (another thread, or this
 * one after forgetting the old store) measures the disk again and builds its own index.
 *
 * @example
 * const cache = new NameIndexCache(16 * 1024 * 1024)
 * cache.page(store, () => NameIndex.from(readNames()), 'posts/', undefined, 100)
 * cache.added(store, 'posts/new')   // after a write created a document
 */
export class NameIndexCache {
  readonly budgetBytes: number
  /** Least recently listed first (a Map iterates in insertion order; a listing re-inserts). */
  private readonly indexes = new Map<object, NameIndex>()
  private totalBytes = 0

  constructor(budgetBytes: number) {
    this.budgetBytes = budgetBytes
  }

  /** Estimated memory of every index held. */
  get bytes(): number {
    return this.totalBytes
  }

  /** Number of indexes held. */
  get size(): number {
    return this.indexes.size
  }

  /** Whether `owner`'s index is currently held. */
  has(owner: object): boolean {
    return this.indexes.has(owner)
  }

  /** One page of `owner`'s names (see {@link NameIndex.page}), building its index first if needed. */
  page(owner: object, build: () => NameIndex, prefix: string, after: string | undefined, limit: number): string[] {
    let index = this.indexes.get(owner)
    if (index === undefined) {
      index = build()
      this.totalBytes += index.approxBytes
    } else {
      this.indexes.delete(owner)
    }
    this.indexes.set(owner, index)
    this.evictBeyondBudget(owner)
    return index.page(prefix, after, limit)
  }

  /** A document `name` was created in `owner`'s namespace. */
  added(owner: object, name: string): void {
    const index = this.indexes.get(owner)
    if (index === undefined || !index.insert(name)) return
    this.totalBytes += indexedNameBytes(name)
    this.evictBeyondBudget(owner)
  }

  /** A document `name` was deleted from `owner`'s namespace. */
  removed(owner: object, name: string): void {
    const index = this.indexes.get(owner)
    if (index !== undefined && index.delete(name)) this.totalBytes -= indexedNameBytes(name)
  }

  /** Forget `owner`'s index (its namespace was measured again, or it is going away). */
  forget(owner: object): void {
    const index = this.indexes.get(owner)
    if (index === undefined) return
    this.indexes.delete(owner)
    this.totalBytes -= index.approxBytes
  }

  private evictBeyondBudget(keep: object): void {
    for (const [owner, index] of this.indexes) {
      if (this.totalBytes <= this.budgetBytes) return
      if (owner === keep) continue
      this.indexes.delete(owner)
      this.totalBytes -= index.approxBytes
    }
  }
}

/**
 * The cache of this thread (module state is per thread in Node: each worker thread loads its
 * own copy), which every {@link NamespaceStore} uses unless given another.
 */
export const threadNameIndexCache = new NameIndexCache(DEFAULTS.LIST_INDEX_BUDGET_BYTES)

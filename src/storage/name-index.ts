/**
 * A sorted set of document names that answers one page of a listing in O(log n + limit).
 *
 * Names are kept in chunks: sorted arrays of at most {@link MAX_CHUNK_NAMES}, every name of a
 * chunk below every name of the next. A lookup is a binary search over the chunks' last names,
 * then one inside a chunk; an insert or delete moves at most one chunk's worth of entries (plus,
 * when a chunk splits or empties, the chunk list, ~n/1024 entries). A plain sorted array would
 * move up to n entries per insert.
 *
 * Order is JavaScript's string order (UTF-16 code units), the order of `Array.prototype.sort()`
 * and of `<` in scripts — so a script can compare a name with its `after` cursor itself.
 */

/** A chunk that grows past this is split in two. */
const MAX_CHUNK_NAMES = 1024
/** A chunk that shrinks below this is merged into a neighbour when the two fit in one. */
const MIN_CHUNK_NAMES = 128
/**
 * Estimated memory of one indexed name besides its characters: the V8 string header, the
 * array slot and a share of the chunk arrays. Used for the per-thread budget, not exact.
 */
const NAME_OVERHEAD_BYTES = 48

/** Estimated bytes one name takes in an index (two bytes per UTF-16 unit, the worst case). */
export function indexedNameBytes(name: string): number {
  return NAME_OVERHEAD_BYTES + 2 * name.length
}

export class NameIndex {
  private chunks: string[][] = []
  /** Number of names. */
  size = 0
  /** Estimated memory of the names held, by {@link indexedNameBytes}. */
  approxBytes = 0

  /**
   * An index of `names` (any order, no duplicates expected; duplicates are dropped).
   *
   * @example
   * NameIndex.from(['b', 'a', 'c/1']).page('', undefined, 2) // ['a', 'b']
   */
  static from(names: readonly string[]): NameIndex {
    const index = new NameIndex()
    const sorted = [...new Set(names)].sort()
    for (let i = 0; i < sorted.length; i += MAX_CHUNK_NAMES / 2) index.chunks.push(sorted.slice(i, i + MAX_CHUNK_NAMES / 2))
    index.size = sorted.length
    for (const name of sorted) index.approxBytes += indexedNameBytes(name)
    return index
  }

  /** Add a name; false when it was already there. */
  insert(name: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([name])
    } else {
      // The first chunk whose last name is >= name, or the last chunk when name is the largest.
      const c = Math.min(this.chunkAtOrAfter(name, false), this.chunks.length - 1)
      const chunk = this.chunks[c]!
      const i = lowerBound(chunk, name, false)
      if (chunk[i] === name) return false
      chunk.splice(i, 0, name)
      if (chunk.length > MAX_CHUNK_NAMES) this.chunks.splice(c, 1, chunk.slice(0, chunk.length >> 1), chunk.slice(chunk.length >> 1))
    }
    this.size++
    this.approxBytes += indexedNameBytes(name)
    return true
  }

  /** Remove a name; false when it was not there. */
  delete(name: string): boolean {
    const c = this.chunkAtOrAfter(name, false)
    const chunk = this.chunks[c]
    if (chunk === undefined) return false
    const i = lowerBound(chunk, name, false)
    if (chunk[i] !== name) return false
    chunk.splice(i, 1)
    if (chunk.length === 0) this.chunks.splice(c, 1)
    else if (chunk.length < MIN_CHUNK_NAMES) this.mergeSmall(c)
    this.size--
    this.approxBytes -= indexedNameBytes(name)
    return true
  }

  /**
   * Up to `limit` names that start with `prefix` and sort strictly after `after` (from the
   * first such name when `after` is undefined), in order. The names starting with a prefix are
   * one contiguous run of the sorted set, so the walk starts at a binary-searched position and
   * stops at the first name outside the run: O(log n + limit).
   */
  page(prefix: string, after: string | undefined, limit: number): string[] {
    // Start at the first name >= prefix, or > after when after is within or past the run.
    const fromAfter = after !== undefined && after >= prefix
    const key = fromAfter ? after : prefix
    let c = this.chunkAtOrAfter(key, fromAfter)
    const out: string[] = []
    if (c >= this.chunks.length) return out
    let i = lowerBound(this.chunks[c]!, key, fromAfter)
    while (out.length < limit && c < this.chunks.length) {
      const chunk = this.chunks[c]!
      for (; i < chunk.length && out.length < limit; i++) {
        const name = chunk[i]!
        if (!name.startsWith(prefix)) return out
        out.push(name)
      }
      c++
      i = 0
    }
    return out
  }

  /** Index of the first chunk whose last name is >= key (> key when `strict`); chunks.length if none. */
  private chunkAtOrAfter(key: string, strict: boolean): number {
    let lo = 0
    let hi = this.chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const last = this.chunks[mid]![this.chunks[mid]!.length - 1]!
      if (strict ? last > key : last >= key) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  private mergeSmall(c: number): void {
    const chunk = this.chunks[c]!
    const next = this.chunks[c + 1]
    if (next !== undefined && chunk.length + next.length <= MAX_CHUNK_NAMES) {
      this.chunks.splice(c, 2, chunk.concat(next))
      return
    }
    const previous = this.chunks[c - 1]
    if (previous !== undefined && previous.length + chunk.length <= MAX_CHUNK_NAMES) {
      this.chunks.splice(c - 1, 2, previous.concat(chunk))
    }
  }
}

/** First index of sorted `items` whose value is >= key (> key when `strict`). */
function lowerBound(items: readonly string[], key: string, strict: boolean): number {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const value = items[mid]!
    if (strict ? value > key : value >= key) hi = mid
    else lo = mid + 1
  }
  return lo
}

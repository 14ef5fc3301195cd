import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS } from '../../src/config/index.js'
import { encodeDocumentName, NameIndex, NameIndexCache, NamespaceStore, parseListOptions, type StorageQuota } from '../../src/storage/index.js'

const QUOTA: StorageQuota = { maxDocumentBytes: 1000, maxNamespaceBytes: 1 << 30, maxDocuments: 100_000, maxNameBytes: 200 }

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The reference: filter and sort the whole set, as a readdir + sort would. */
function expectedPage(all: Iterable<string>, prefix: string, after: string | undefined, limit: number): string[] {
  return [...all].filter((n) => n.startsWith(prefix) && (after === undefined || n > after)).sort().slice(0, limit)
}

/** Every page of a listing, following `after` until a short page. */
function allPages(store: NamespaceStore, prefix: string, limit: number): string[][] {
  const pages: string[][] = []
  let after: string | undefined
  for (;;) {
    const page = store.list(prefix, after === undefined ? { limit } : { limit, after })
    pages.push(page)
    if (page.length < limit) return pages
    after = page[page.length - 1]
  }
}

t.test('parseListOptions(options)', async (t) => {
  t.same(parseListOptions(undefined), { limit: DEFAULTS.MAX_LIST_NAMES, after: undefined })
  t.same(parseListOptions({}), { limit: 1000, after: undefined })
  t.same(parseListOptions({ limit: 1, after: '' }), { limit: 1, after: '' })
  t.same(parseListOptions({ limit: 1000, after: 'x' }), { limit: 1000, after: 'x' })
  const bad: [unknown, RegExp][] = [
    [null, /options must be an object/],
    [[], /options must be an object/],
    ['x', /options must be an object/],
    [{ limt: 5 }, /unknown option "limt"/],
    [{ limit: 0 }, /limit must be an integer from 1 to 1000/],
    [{ limit: 1001 }, /limit must be an integer from 1 to 1000/],
    [{ limit: 1.5 }, /limit/],
    [{ limit: '5' }, /limit/],
    [{ limit: Number.NaN }, /limit/],
    [{ limit: -1 }, /limit/],
    [{ after: 5 }, /after must be a string/],
    [{ after: null }, /after must be a string/],
    [{ after: '\ud800' }, /unpaired surrogate/],
  ]
  for (const [options, message] of bad) t.throws(() => parseListOptions(options), { code: 'INVALID_NAME', message }, JSON.stringify(options))
})

t.test('NameIndex matches a filter-and-sort reference through random inserts, deletes and pages', async (t) => {
  const seed = 20260 // fixed, so a failure replays; change it to explore
  const random = prng(seed)
  const alphabet = ['a', 'b', '/', 'é', '🙂', 'z', '0', '\ufffd', '\uffff']
  const word = () => Array.from({ length: 1 + Math.floor(random() * 4) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
  const index = new NameIndex()
  const reference = new Set<string>()
  let mismatches = 0
  // Enough operations to split chunks (1,024 names) many times and merge them back.
  for (let step = 0; step < 20_000; step++) {
    const name = word() + word()
    const r = random()
    if (r < 0.6) {
      if (index.insert(name) !== !reference.has(name)) mismatches++
      reference.add(name)
    } else if (r < 0.9) {
      if (index.delete(name) !== reference.has(name)) mismatches++
      reference.delete(name)
    } else {
      const prefix = random() < 0.3 ? '' : word()
      const after = random() < 0.5 ? undefined : word()
      const limit = 1 + Math.floor(random() * 50)
      if (JSON.stringify(index.page(prefix, after, limit)) !== JSON.stringify(expectedPage(reference, prefix, after, limit))) mismatches++
    }
    if (step === 10_000) {
      // Delete most names, to exercise chunk merging, then check everything.
      for (const n of [...reference].filter(() => random() < 0.9)) {
        index.delete(n)
        reference.delete(n)
      }
    }
  }
  t.equal(mismatches, 0, `no mismatch (seed ${seed})`)
  t.equal(index.size, reference.size)
  t.same(index.page('', undefined, reference.size + 1), [...reference].sort(), 'the whole set, in order')
  t.ok(reference.size > 1024, `ended with ${reference.size} names, more than one chunk`)
})

t.test('NamespaceStore.list(prefix, { limit, after })', async (t) => {
  const store = new NamespaceStore(join(t.testdir(), 'ns'))
  store.open()
  const names: string[] = []
  for (let i = 0; i < 2500; i++) names.push(`posts/${String(i).padStart(4, '0')}`)
  for (let i = 0; i < 30; i++) names.push(`people/${i}`)
  // Most documents are planted as files (thousands of fsynced writes take seconds on a slow
  // disk), then measured by open(); a few go through write().
  for (const name of names) writeFileSync(join(store.dataDir, encodeDocumentName(name)), '1')
  store.open()
  for (const name of ['post', 'posts', 'é', '🙂', '\ufffd']) {
    store.write(name, '1', QUOTA)
    names.push(name)
  }
  t.same(store.usage.documents, names.length)
  const sorted = [...names].sort()

  t.test('pages cover every name once, in order; the default and largest page is 1,000', async (t) => {
    t.equal(store.list('').length, 1000, 'no options: the first 1,000')
    const pages = allPages(store, '', 1000)
    t.same(pages.map((p) => p.length), [1000, 1000, 535])
    t.same(pages.flat(), sorted)
    const small = allPages(store, 'posts/', 7)
    t.same(small.flat(), sorted.filter((n) => n.startsWith('posts/')))
    t.ok(small.slice(0, -1).every((p) => p.length === 7) && small[small.length - 1]!.length < 7, 'full pages, then a short last one')
  })

  t.test('after may be any string: before the prefix, inside it, past it', async (t) => {
    t.same(store.list('people/', { limit: 3, after: 'a' }), ['people/0', 'people/1', 'people/10'])
    t.same(store.list('people/', { limit: 3, after: 'people/1' }), ['people/10', 'people/11', 'people/12'])
    t.same(store.list('people/', { limit: 3, after: 'people/10x' }), ['people/11', 'people/12', 'people/13'])
    t.same(store.list('people/', { after: 'people/9' }), [])
    t.same(store.list('people/', { after: 'q' }), [])
    t.same(store.list('post', { limit: 3 }), ['post', 'posts', 'posts/0000'])
    t.same(store.list('', { limit: 3, after: 'posts/2499' }), ['é', '🙂', '\ufffd'], 'JavaScript string order: UTF-16 units, so U+1F642 (D83D DE42) before U+FFFD')
  })

  t.test('writes and deletes keep the listing current', async (t) => {
    store.write('posts/0000a', '1', QUOTA)
    t.same(store.list('posts/', { limit: 3 }), ['posts/0000', 'posts/0000a', 'posts/0001'])
    store.write('posts/0000a', '2', QUOTA)
    t.same(store.list('posts/', { limit: 3 }), ['posts/0000', 'posts/0000a', 'posts/0001'], 'an overwrite adds nothing')
    t.equal(store.remove('posts/0000a', QUOTA), true)
    t.equal(store.remove('posts/0001', QUOTA), true)
    t.same(store.list('posts/', { limit: 3 }), ['posts/0000', 'posts/0002', 'posts/0003'])
    t.throws(() => store.write('posts/\ud800', '1', QUOTA), { code: 'INVALID_NAME' })
    t.same(store.list('posts/', { limit: 3 }), ['posts/0000', 'posts/0002', 'posts/0003'], 'a refused write changes nothing')
  })

  t.test('a listing reads the index, not the directory: a file planted behind the store shows only after a new open', async (t) => {
    writeFileSync(join(store.dataDir, 'planted.json'), '1')
    t.notOk(store.list('planted').includes('planted'), 'the index of this store does not readdir per call')
    const fresh = new NamespaceStore(store.root)
    t.same(fresh.list('planted'), ['planted'], 'a new store measures and indexes the disk')
    store.open()
    t.same(store.list('planted'), ['planted'], 'and so does open() again')
  })

  t.test('bad arguments are INVALID_NAME', async (t) => {
    t.throws(() => store.list(5), { code: 'INVALID_NAME', message: /prefix must be a string/ })
    t.throws(() => store.list('', { limit: 1001 }), { code: 'INVALID_NAME', message: /limit/ })
    t.throws(() => store.list('\udc00'), { code: 'INVALID_NAME', message: /prefix/ })
  })
})

t.test('the indexes of a thread stay within their memory budget', async (t) => {
  const dir = t.testdir()
  // Budget for one index of 200 names of 8 characters (48 + 2 × 8 = 64 bytes each), and a half.
  const cache = new NameIndexCache(200 * 64 + 32)
  const stores = [0, 1, 2].map((i) => new NamespaceStore(join(dir, `ns${i}`), { indexCache: cache }))
  for (const [i, store] of stores.entries()) {
    store.open()
    for (let n = 0; n < 200; n++) writeFileSync(join(store.dataDir, `doc${i}-${String(n).padStart(3, '0')}.json`), '1')
    store.open()
  }
  t.equal(cache.size, 0, 'nothing is indexed before a listing')
  t.same(stores[0]!.list('', { limit: 2 }), ['doc0-000', 'doc0-001'])
  t.equal(cache.bytes, 200 * 64)
  t.same(stores[1]!.list('', { limit: 2 }), ['doc1-000', 'doc1-001'])
  t.notOk(cache.has(stores[0]!), 'the least recently listed index was dropped')
  t.ok(cache.has(stores[1]!))
  t.ok(cache.bytes <= cache.budgetBytes, `${cache.bytes} <= ${cache.budgetBytes}`)
  stores[1]!.write('doc1-zzz', '1', QUOTA)
  t.equal(cache.bytes, 201 * 64, 'growth is counted')
  t.ok(cache.bytes > cache.budgetBytes && cache.has(stores[1]!), 'the index being written to stays even past the budget')
  t.same(stores[0]!.list('', { limit: 2, after: 'doc0-197' }), ['doc0-198', 'doc0-199'], 'a dropped index is rebuilt by its next listing')
  t.notOk(cache.has(stores[1]!))
  t.equal(stores[2]!.remove('doc2-000', QUOTA), true, 'writes to a namespace with no index touch no index')
  t.same(stores[2]!.list('', { limit: 1 }), ['doc2-001'])
})

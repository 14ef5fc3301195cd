import t from 'tap'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import {
  NamespaceStore,
  decodeDocumentName,
  documentCostBytes,
  encodeDocumentName,
  validateDocumentName,
  type StorageQuota,
} from '../../src/storage/index.js'

const QUOTA: StorageQuota = { maxDocumentBytes: 10_000, maxNamespaceBytes: 1 << 20, maxDocuments: 100, maxNameBytes: 200 }

/** The usage of a data directory as the quota should see it, computed from the files alone. */
function usageOnDisk(dataDir: string): { bytes: number; documents: number } {
  let bytes = 0
  let documents = 0
  for (const file of readdirSync(dataDir)) {
    if (file.startsWith('.')) continue
    bytes += documentCostBytes(lstatSync(join(dataDir, file)).size, Buffer.byteLength(file))
    documents++
  }
  return { bytes, documents }
}

function openStore(t: { testdir(): string }): NamespaceStore {
  const store = new NamespaceStore(join(t.testdir(), 'ns'))
  store.open()
  return store
}

t.test('validateDocumentName(name)', async (t) => {
  for (const good of ['a', 'profile', 'posts/2026/hello', 'a.b', '.hidden', 'é🙂', 'x'.repeat(200), '..x', 'x..', '..%2f', '\ufffd', '\ud83d\ude00']) {
    t.equal(validateDocumentName(good, 200), good, JSON.stringify(good))
  }
  const bad: unknown[] = [
    '', 'x'.repeat(201), 'é'.repeat(101), '..', '../x', 'a/../b', 'a/..', '/abs', 'a//b', 'a/', './a', 'a/./b',
    'nul\u0000', 'tab\t', 'back\\slash', '\u007f', 5, null, undefined, ['a'],
  ]
  for (const name of bad) {
    t.throws(() => validateDocumentName(name, 200), { code: 'INVALID_NAME' }, JSON.stringify(name))
  }
  // Unpaired surrogates: alone, at either end, in the middle, and a pair in the wrong order.
  for (const name of ['\ud800', '\udc00', 'a\ud83d', '\ude00a', 'a\udbffb', '\ude00\ud83d']) {
    t.throws(() => validateDocumentName(name, 200), { code: 'INVALID_NAME', message: /unpaired surrogate/ }, JSON.stringify(name))
  }
})

t.test('encodeDocumentName(name) / decodeDocumentName(file)', async (t) => {
  for (const name of ['a', 'posts/1', 'a!b', 'a%2Fb', '.hidden', 'x.y', 'é🙂 ok', '..%2f..%2fescape', '\ufffd']) {
    const file = encodeDocumentName(name)
    t.notOk(file.startsWith('.'), `${name}: never a dot file`)
    t.notOk(file.includes('/'), `${name}: never a path`)
    t.equal(decodeDocumentName(file), name, `${name}: round trip`)
  }
  t.equal(decodeDocumentName('.tmp-abc'), undefined)
  t.equal(decodeDocumentName('notes.txt'), undefined)
  t.equal(decodeDocumentName('%zz.json'), undefined)
  t.equal(decodeDocumentName('%ED%A0%80.json'), undefined, 'the UTF-8-like form of a surrogate is no document')
  t.equal(decodeDocumentName('%41.json'), undefined, 'a file no name encodes to is no document (it would shadow A.json)')
  t.equal(decodeDocumentName('a!!b.json'), undefined, 'a file decoding to an invalid name is no document')
  t.throws(() => encodeDocumentName('é'.repeat(100)), { code: 'INVALID_NAME', message: /encoded/ })
  t.throws(() => encodeDocumentName('\ud800'), { code: 'INVALID_NAME' })
})

t.test('documentCostBytes(valueBytes, fileNameBytes): whole 4 KiB blocks, at least one, plus the file name', async (t) => {
  t.equal(documentCostBytes(0, 6), 4102)
  t.equal(documentCostBytes(1, 6), 4102)
  t.equal(documentCostBytes(4096, 6), 4102)
  t.equal(documentCostBytes(4097, 6), 8198)
  t.equal(documentCostBytes(3 * 4096, 240), 3 * 4096 + 240)
})

t.test('NamespaceStore', async (t) => {
  t.test('creates the namespace layout with mode 0700', async (t) => {
    const root = join(t.testdir(), 'ns')
    new NamespaceStore(root).open()
    t.same(readdirSync(root).sort(), ['config', 'data', 'logs'])
    for (const dir of ['', 'config', 'data', 'logs']) t.equal(lstatSync(join(root, dir)).mode & 0o777, 0o700, `${dir || 'root'}: 0700`)
  })

  t.test('writes, reads, lists and removes documents, keeping the usage itself', async (t) => {
    const store = openStore(t)
    t.same(store.usage, { bytes: 0, documents: 0 })
    store.write('a', '"one"', QUOTA)
    store.write('b/c', '[1,2]', QUOTA)
    t.same(store.usage, { bytes: 4096 + 6 + 4096 + 8, documents: 2 }, '"a.json" and "b!c.json", a block each')
    t.equal(store.read('a', QUOTA), '"one"')
    t.equal(store.read('missing', QUOTA), undefined)
    t.same(store.list(''), ['a', 'b/c'])
    t.same(store.list('b/'), ['b/c'])
    store.write('a', JSON.stringify('x'.repeat(5000)), QUOTA)
    t.same(store.usage, { bytes: 8192 + 6 + 4096 + 8, documents: 2 }, 'replacing counts the difference, in blocks')
    t.same(store.usage, usageOnDisk(store.dataDir), 'the figure matches the disk')
    const again = new NamespaceStore(store.root)
    again.open()
    t.same(again.usage, store.usage, 'open() measures the same figure from disk')
    t.equal(store.remove('a', QUOTA), true)
    t.equal(store.remove('a', QUOTA), false)
    t.same(store.usage, { bytes: 4096 + 8, documents: 1 })
    t.same(store.list(''), ['b/c'])
  })

  t.test('operations open a namespace nobody opened', async (t) => {
    const store = new NamespaceStore(join(t.testdir(), 'ns'))
    store.write('a', '1', QUOTA)
    t.same(store.usage, { bytes: 4102, documents: 1 })
    t.same(store.list(''), ['a'])
  })

  t.test('charges the namespace quota by cost, before touching the disk', async (t) => {
    const store = openStore(t)
    // Two one-block documents named "one"/"two" (file names of 8 bytes) fill it exactly.
    const quota = { ...QUOTA, maxDocumentBytes: 100, maxNamespaceBytes: 2 * (4096 + 8) }
    t.throws(() => store.write('big', JSON.stringify('x'.repeat(100)), quota), { code: 'QUOTA_EXCEEDED', message: /Document is 102 bytes; the limit is 100/ })
    store.write('one', '1', quota)
    store.write('two', JSON.stringify('x'.repeat(90)), quota)
    t.same(store.usage, { bytes: quota.maxNamespaceBytes, documents: 2 }, 'full to the byte')
    t.throws(() => store.write('six', '1', quota), { code: 'QUOTA_EXCEEDED', message: /Namespace would use 12312 bytes; the limit is 8208/ })
    t.throws(() => store.write('0', '1', quota), { code: 'QUOTA_EXCEEDED' }, 'even the shortest name costs a block')
    t.same(readdirSync(store.dataDir).sort(), ['one.json', 'two.json'], 'nothing was written, not even a temporary file')
    store.write('two', '2', quota)
    t.same(store.usage, { bytes: quota.maxNamespaceBytes, documents: 2 }, 'overwriting within its blocks is free')
    const smaller = { ...quota, maxNamespaceBytes: 4096 }
    store.write('one', '"shrunk"', smaller)
    t.pass('a namespace over a lowered quota can still rewrite a document without growing')
    t.equal(store.remove('two', smaller), true, 'and delete')
  })

  t.test('caps the number of documents: new ones past it fail, overwrites and deletes do not', async (t) => {
    const store = openStore(t)
    const quota = { ...QUOTA, maxDocuments: 3 }
    for (const name of ['a', 'b', 'c']) store.write(name, '1', quota)
    t.throws(() => store.write('d', '1', quota), {
      code: 'QUOTA_EXCEEDED',
      message: 'Namespace holds 3 documents; the limit is 3 (overwrite or delete one instead)',
    })
    t.same(readdirSync(store.dataDir).sort(), ['a.json', 'b.json', 'c.json'], 'nothing was written')
    store.write('a', '2', quota)
    t.equal(store.read('a', quota), '2', 'an existing document can still be overwritten')
    t.equal(store.remove('b', quota), true)
    store.write('d', '1', quota)
    t.same(store.list(''), ['a', 'c', 'd'])
    t.same(store.usage.documents, 3)
  })

  t.test('names are one-to-one: lone surrogates are refused, U+FFFD is a name of its own', async (t) => {
    const store = openStore(t)
    store.write('\ufffd', '"replacement character"', QUOTA)
    for (const name of ['\ud800', '\udc00', 'x\udbff']) {
      t.throws(() => store.write(name, '1', QUOTA), { code: 'INVALID_NAME' }, `write ${JSON.stringify(name)}`)
      t.throws(() => store.read(name, QUOTA), { code: 'INVALID_NAME' }, `read ${JSON.stringify(name)}`)
      t.throws(() => store.remove(name, QUOTA), { code: 'INVALID_NAME' }, `remove ${JSON.stringify(name)}`)
      t.throws(() => store.list(name), { code: 'INVALID_NAME', message: /prefix/ }, `list ${JSON.stringify(name)}`)
    }
    t.same(store.list(''), ['\ufffd'])
    t.equal(store.read('\ufffd', QUOTA), '"replacement character"')
  })

  t.test('never follows a symlink planted inside the namespace', async (t) => {
    const dir = t.testdir({ outside: { 'secret.json': '"top secret"' } })
    const store = new NamespaceStore(join(dir, 'ns'))
    store.open()
    symlinkSync(join(dir, 'outside', 'secret.json'), join(store.dataDir, encodeDocumentName('link')))
    t.throws(() => store.read('link', QUOTA), { code: 'INVALID_NAME', message: /symbolic link/ })
    t.same(store.list(''), [], 'a link is not a document')
    store.write('link', '"mine"', QUOTA)
    t.equal(store.read('link', QUOTA), '"mine"', 'a write replaces the link itself')
    t.same(store.usage.documents, 1)
    t.equal(readFileSync(join(dir, 'outside', 'secret.json'), 'utf8'), '"top secret"', 'the target is untouched')
  })

  t.test('refuses a namespace whose data directory is a symlink', async (t) => {
    const dir = t.testdir({ elsewhere: {} })
    const root = join(dir, 'ns')
    mkdirSync(root)
    symlinkSync(join(dir, 'elsewhere'), join(root, 'data'))
    t.throws(() => new NamespaceStore(root).open(), { code: 'STORAGE_ERROR', message: /not a directory/ })
  })

  t.test('sweeps temporary files a crash left behind, never lists or charges them', async (t) => {
    const store = openStore(t)
    store.write('kept', '1', QUOTA)
    writeFileSync(join(store.dataDir, '.tmp-deadbeef'), '{"torn')
    writeFileSync(join(store.dataDir, 'notes.txt'), 'not a document')
    const fresh = new NamespaceStore(store.root)
    t.same(fresh.list(''), ['kept'])
    t.same(fresh.usage, { bytes: 4096 + 9, documents: 1 })
    t.same(readdirSync(store.dataDir).sort(), ['kept.json', 'notes.txt'], 'the temporary file is gone')
  })

  t.test('answers STORAGE_ERROR on a full disk, leaving the old document and no temporary file', async (t) => {
    // A real full file system: a 64 KiB tmpfs (needs root, as CI runs). Elsewhere, skip.
    const mountPoint = mkdtempSync(join(tmpdir(), 'circles-full-'))
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]).status === 0
    if (!mounted) {
      rmSync(mountPoint, { recursive: true })
      t.comment('skipped: cannot mount a small tmpfs here (not root)')
      return
    }
    t.teardown(() => {
      spawnSync('umount', [mountPoint])
      rmSync(mountPoint, { recursive: true })
    })
    const store = new NamespaceStore(join(mountPoint, 'ns'))
    store.open()
    const quota = { maxDocumentBytes: 1 << 20, maxNamespaceBytes: 1 << 30, maxDocuments: 10_000, maxNameBytes: 200 }
    store.write('doc', '"old"', quota)
    let error: unknown
    try {
      for (let i = 0; i < 100; i++) store.write(`filler${i}`, JSON.stringify('x'.repeat(16_000)), quota)
    } catch (e) {
      error = e
    }
    t.match(error, { code: 'STORAGE_ERROR', message: /disk is full/ })
    const before = store.usage
    t.throws(() => store.write('doc', JSON.stringify('y'.repeat(60_000)), quota), { code: 'STORAGE_ERROR' })
    t.equal(store.read('doc', quota), '"old"', 'the old document is intact')
    t.same(readdirSync(store.dataDir).filter((f) => f.startsWith('.')), [], 'no temporary file is left')
    t.same(store.usage, before, 'a failed write changes no figure')
    t.same(store.usage, usageOnDisk(store.dataDir), 'and the figure matches the disk')
  })
})

import t from 'tap'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { NamespaceStore, decodeDocumentName, encodeDocumentName, validateDocumentName } from '../../src/storage/index.js'

const QUOTA = { maxDocumentBytes: 100, maxNamespaceBytes: 250, maxNameBytes: 200 }

t.test('validateDocumentName(name)', async (t) => {
  for (const good of ['a', 'profile', 'posts/2026/hello', 'a.b', '.hidden', 'é🙂', 'x'.repeat(200), '..x', 'x..', '..%2f']) {
    t.equal(validateDocumentName(good, 200), good, JSON.stringify(good))
  }
  const bad: unknown[] = [
    '', 'x'.repeat(201), 'é'.repeat(101), '..', '../x', 'a/../b', 'a/..', '/abs', 'a//b', 'a/', './a', 'a/./b',
    'nul\u0000', 'tab\t', 'back\\slash', '\u007f', 5, null, undefined, ['a'],
  ]
  for (const name of bad) {
    t.throws(() => validateDocumentName(name, 200), { code: 'INVALID_NAME' }, JSON.stringify(name))
  }
})

t.test('encodeDocumentName(name) / decodeDocumentName(file)', async (t) => {
  for (const name of ['a', 'posts/1', 'a!b', 'a%2Fb', '.hidden', 'x.y', 'é🙂 ok', '..%2f..%2fescape']) {
    const file = encodeDocumentName(name)
    t.notOk(file.startsWith('.'), `${name}: never a dot file`)
    t.notOk(file.includes('/'), `${name}: never a path`)
    t.equal(decodeDocumentName(file), name, `${name}: round trip`)
  }
  t.equal(decodeDocumentName('.tmp-abc'), undefined)
  t.equal(decodeDocumentName('notes.txt'), undefined)
  t.equal(decodeDocumentName('%zz.json'), undefined)
  t.throws(() => encodeDocumentName('é'.repeat(100)), { code: 'INVALID_NAME', message: /encoded/ })
})

t.test('NamespaceStore', async (t) => {
  t.test('creates the namespace layout with mode 0700', async (t) => {
    const root = join(t.testdir(), 'ns')
    new NamespaceStore(root).open()
    t.same(readdirSync(root).sort(), ['config', 'data', 'logs'])
  })

  t.test('writes, reads, lists and removes documents, tracking bytes', async (t) => {
    const store = new NamespaceStore(join(t.testdir(), 'ns'))
    store.open()
    let used = store.write('a', '"one"', 0, QUOTA)
    used = store.write('b/c', '[1,2]', used, QUOTA)
    t.equal(used, 10)
    t.equal(store.read('a', QUOTA), '"one"')
    t.equal(store.read('missing', QUOTA), undefined)
    t.same(store.list(''), ['a', 'b/c'])
    t.same(store.list('b/'), ['b/c'])
    used = store.write('a', '"replaced"', used, QUOTA)
    t.equal(used, 15, 'replacing counts the difference')
    t.equal(store.usage(), 15, 'usage() measures the same figure from disk')
    t.equal(store.remove('a', QUOTA), 10)
    t.equal(store.remove('a', QUOTA), 0)
    t.same(store.list(''), ['b/c'])
  })

  t.test('enforces the document and namespace quotas before touching the disk', async (t) => {
    const store = new NamespaceStore(join(t.testdir(), 'ns'))
    store.open()
    t.throws(() => store.write('big', JSON.stringify('x'.repeat(100)), 0, QUOTA), { code: 'QUOTA_EXCEEDED', message: /Document/ })
    let used = 0
    used = store.write('one', JSON.stringify('x'.repeat(90)), used, QUOTA)
    used = store.write('two', JSON.stringify('x'.repeat(90)), used, QUOTA)
    t.throws(() => store.write('three', JSON.stringify('x'.repeat(90)), used, QUOTA), { code: 'QUOTA_EXCEEDED', message: /Namespace/ })
    t.same(store.list(''), ['one', 'two'], 'nothing was written')
    t.equal(store.write('one', '1', used, QUOTA), used - 91, 'shrinking a document is always allowed')
  })

  t.test('never follows a symlink planted inside the namespace', async (t) => {
    const dir = t.testdir({ outside: { 'secret.json': '"top secret"' } })
    const store = new NamespaceStore(join(dir, 'ns'))
    store.open()
    symlinkSync(join(dir, 'outside', 'secret.json'), join(store.dataDir, encodeDocumentName('link')))
    t.throws(() => store.read('link', QUOTA), { code: 'INVALID_NAME', message: /symbolic link/ })
    store.write('link', '"mine"', 0, QUOTA)
    t.equal(store.read('link', QUOTA), '"mine"', 'a write replaces the link itself')
    const { readFileSync } = await import('node:fs')
    t.equal(readFileSync(join(dir, 'outside', 'secret.json'), 'utf8'), '"top secret"', 'the target is untouched')
  })

  t.test('refuses a namespace whose data directory is a symlink', async (t) => {
    const dir = t.testdir({ elsewhere: {} })
    const root = join(dir, 'ns')
    mkdirSync(root)
    symlinkSync(join(dir, 'elsewhere'), join(root, 'data'))
    t.throws(() => new NamespaceStore(root).open(), { code: 'STORAGE_ERROR', message: /not a directory/ })
  })

  t.test('sweeps temporary files a crash left behind, and never lists them', async (t) => {
    const store = new NamespaceStore(join(t.testdir(), 'ns'))
    store.open()
    writeFileSync(join(store.dataDir, '.tmp-deadbeef'), '{"torn')
    t.same(store.list(''), [])
    store.open()
    t.same(readdirSync(store.dataDir), [])
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
    const quota = { maxDocumentBytes: 1 << 20, maxNamespaceBytes: 1 << 30, maxNameBytes: 200 }
    store.write('doc', '"old"', 0, quota)
    let used = 5
    let error: unknown
    try {
      for (let i = 0; i < 100; i++) used = store.write(`filler${i}`, JSON.stringify('x'.repeat(16_000)), used, quota)
    } catch (e) {
      error = e
    }
    t.match(error, { code: 'STORAGE_ERROR', message: /disk is full/ })
    t.throws(() => store.write('doc', JSON.stringify('y'.repeat(60_000)), used, quota), { code: 'STORAGE_ERROR' })
    t.equal(store.read('doc', quota), '"old"', 'the old document is intact')
    t.same(readdirSync(store.dataDir).filter((f) => f.startsWith('.')), [], 'no temporary file is left')
  })
})

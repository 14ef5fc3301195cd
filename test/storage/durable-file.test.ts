import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { replaceFileSync } from '../../src/storage/durable-file.js'

t.test('replaceFileSync', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'durable-file-'))

  t.test('creates or replaces the file, mode 0600 by default, leaving no temporary file', async (t) => {
    const path = join(dir, 'a.json')
    replaceFileSync(path, '{"v":1}\n')
    t.equal(readFileSync(path, 'utf8'), '{"v":1}\n')
    t.equal(statSync(path).mode & 0o777, 0o600)
    replaceFileSync(path, '{"v":2}\n', { mode: 0o640 })
    t.equal(readFileSync(path, 'utf8'), '{"v":2}\n')
    t.same(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), [])
  })

  t.test('a failure before the rename keeps the old file and removes the temporary one', async (t) => {
    const path = join(dir, 'b.json')
    writeFileSync(path, 'old')
    t.throws(() => replaceFileSync(path, 'new', { tempName: '.b.tmp', beforeRename: () => { throw new Error('crash before rename') } }), { message: 'crash before rename' })
    t.equal(readFileSync(path, 'utf8'), 'old')
    t.notOk(readdirSync(dir).includes('.b.tmp'))
  })

  t.test('calls renamed once the file is in place, before it returns', async (t) => {
    const path = join(dir, 'c.json')
    let seen: string | undefined
    replaceFileSync(path, 'x', { renamed: () => (seen = readFileSync(path, 'utf8')) })
    t.equal(seen, 'x')
  })

  t.test('never writes through a symlink planted at the temporary name', async (t) => {
    const target = join(dir, 'outside')
    writeFileSync(target, 'untouched')
    symlinkSync(target, join(dir, '.d.tmp'))
    t.throws(() => replaceFileSync(join(dir, 'd.json'), 'evil', { tempName: '.d.tmp' }), { code: 'EEXIST' })
    t.equal(readFileSync(target, 'utf8'), 'untouched')
  })
})

/**
 * A sandbox host's progress marker is a file the host writes while it runs and the node reads
 * after it died. It lives in a directory of the node's own (mode 0700, a name nobody can guess),
 * is created new (O_EXCL | O_NOFOLLOW, mode 0600) and opened by the host without following a
 * link; it goes when its host exits, and the directory when the node's process exits.
 */
import t from 'tap'
import { closeSync, existsSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { SandboxPool } from '../../src/sandbox/index.js'
import { createMarker, openMarkerForWriting } from '../../src/sandbox/progress-marker.js'
import { spawnTs } from '../helpers/ts-child.js'

const mode = (path: string) => statSync(path).mode & 0o777

t.test('a host process is given a marker in a private directory', { timeout: 30_000 }, async (t) => {
  const pool = new SandboxPool({ processes: 1 })
  await pool.start()
  const argv = readFileSync(`/proc/${pool.pids[0]}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
  const marker = argv[argv.length - 1]!
  t.match(marker, /\/circles-markers-[^/]{6}\/host-\d+-\d+\.progress$/, `the host's marker: ${marker}`)
  t.equal(mode(dirname(marker)), 0o700, 'its directory is 0700')
  t.ok(lstatSync(marker).isFile(), 'a regular file, not a link')
  t.equal(mode(marker), 0o600, 'the marker is 0600')
  await pool.close()
  t.notOk(existsSync(marker), 'removed once its host exited')
})

t.test('the node creates a marker new, and the host never follows a link to write one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'circles-marker-test-'))
  const victim = join(dir, 'victim')
  writeFileSync(victim, 'precious')
  const planted = join(dir, 'planted.progress')
  symlinkSync(victim, planted)
  t.throws(() => openMarkerForWriting(planted), { code: 'ELOOP' }, 'the host refuses a link where its marker should be')
  t.throws(() => openMarkerForWriting(join(dir, 'missing.progress')), { code: 'ENOENT' }, 'and never creates one')
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the file the link points to is untouched')

  const marker = createMarker()
  t.equal(marker.read(), undefined, 'empty until the host starts a run')
  const fd = openMarkerForWriting(marker.path)
  const bytes = Buffer.alloc(4)
  bytes.writeInt32LE(41, 0)
  writeSync(fd, bytes, 0, 4, 0)
  closeSync(fd)
  t.equal(marker.read(), 41, 'the node reads what the host wrote')
  marker.remove()
  t.notOk(existsSync(marker.path))
})

t.test('the marker directory goes when the process exits', { timeout: 30_000 }, async (t) => {
  const child = spawnTs(new URL('../fixtures/sandbox/print-marker-dir.ts', import.meta.url).pathname, [], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 0)
  const dir = out.trim()
  t.match(dir, /circles-markers-/)
  t.notOk(existsSync(dir), `${dir} is gone`)
})

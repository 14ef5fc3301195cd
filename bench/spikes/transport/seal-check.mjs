// Spike (issue #26): what a compromised host can do to the node through the ring's memory.
// A host holding the mapping's descriptor can ftruncate it; the node's next access past the new
// end is a SIGBUS, which kills the node. With a file (even 0600 in a 0700 directory, unlinked)
// it can; with a memfd sealed against shrinking (the addon's sealedMemfd) it cannot.
//   node bench/spikes/transport/seal-check.mjs
import { spawnSync, spawn } from 'node:child_process'
import { closeSync, constants, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAddon, mappingBytes } from './ring.mjs'

const role = process.argv[2]
const self = fileURLToPath(import.meta.url)
const HOSTILE_HOST = `try { require('fs').ftruncateSync(3, 0); console.log('host: ftruncate(fd, 0) succeeded') } catch (e) { console.log('host: ftruncate(fd, 0) refused: ' + e.code) }`

if (role === 'file' || role === 'memfd') {
  const addon = loadAddon()
  let fd
  if (role === 'file') {
    const dir = mkdtempSync('/dev/shm/circles-seal-check-')
    fd = openSync(join(dir, 'ring'), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    ftruncateSync(fd, mappingBytes())
    rmSync(dir, { recursive: true })
  } else {
    fd = addon.sealedMemfd(mappingBytes())
  }
  const bytes = new Uint8Array(addon.mapFd(fd, mappingBytes()))
  bytes[100] = 7
  const host = spawn(process.execPath, ['-e', HOSTILE_HOST], { stdio: ['ignore', 'inherit', 'inherit', fd] })
  closeSync(fd)
  host.on('exit', () => {
    const value = bytes[100] // SIGBUS here if the host shrank the file
    console.log(`node: read the mapping after the host's attempt: ${value}`)
  })
} else {
  for (const kind of ['file', 'memfd']) {
    const r = spawnSync(process.execPath, [self, kind], { encoding: 'utf8', timeout: 20_000 })
    console.log(`${kind === 'file' ? '0600 file under a 0700 directory' : 'sealed memfd'}:\n  ${r.stdout.trim().split('\n').join('\n  ')}\n  node process: ${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}`)
  }
}

import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { Verifier } from '../../src/verifier/index.js'
import { SandboxPool } from '../../src/sandbox/index.js'
import { THREAD_NAMES } from '../../src/threads/index.js'

/** The names of this process's threads, as the kernel shows them. */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
    } catch {
      return ''
    }
  })
}

t.test('the verifier and script threads carry names the kernel shows (top -H, the bench)', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const verifier = new Verifier()
  t.teardown(() => verifier.close())
  await verifier.verify('a message', 'not a signature', { type: 'pubkey', pubkey: `02${'11'.repeat(32)}` })
  t.ok(threadNames(process.pid).includes(THREAD_NAMES.verifier), 'a verifier thread of this process')

  const pool = new SandboxPool({ processes: 1 })
  await pool.start()
  t.teardown(() => pool.close())
  const [host] = pool.pids
  t.not(host, process.pid, 'the host is a process of its own')
  const names = threadNames(host!)
  t.equal(names.filter((name) => name === THREAD_NAMES.script).length, 1, 'one script thread in the host')
  t.notOk(threadNames(process.pid).includes(THREAD_NAMES.script), 'none in the node')
})

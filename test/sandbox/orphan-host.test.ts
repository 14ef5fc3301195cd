/**
 * A sandbox host must not outlive its node. It holds the database lock (it inherits the lock's
 * descriptor), so a host left behind by a node killed with -9 would keep a standby from taking
 * the path over. An idle host sees its input pipe close; this test covers the host whose thread
 * is stuck in something no time limit interrupts (the host-hang fault), which never reads the
 * pipe again: the host notices its parent is gone and ends itself.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FAULT_MARKER } from '../../src/faults/index.js'
import { acquireDatabaseLock } from '../../src/storage/index.js'
import { launchNode } from '../helpers/launched.js'
import { openSocket } from '../helpers/raw-socket.js'

t.test('a host whose thread hangs ends itself when its node is killed -9, freeing the database path', { timeout: 60_000 }, async (t) => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'circles-orphan-')), 'db')
  const node = await launchNode(t, {
    circles: [{ name: 'open', port: 0, policy: { run: 'anonymous' } }],
    args: ['--db-path', dbPath],
    env: { CIRCLES_TEST_FAULTS: 'host-hang' },
  })
  const [host] = node.hostPids
  t.ok(host !== undefined && existsSync(`/proc/${host}`), 'the node runs one sandbox host')
  const socket = await openSocket(node.circles['open']!.url)
  socket.send({ jsonrpc: '2.0', id: 1, method: 'play', params: { script: `"${FAULT_MARKER}"` } })
  // The fault says so on the host's stderr, which the node logs.
  await node.waitFor((line) => line.msg === 'sandbox host stderr' && String(line['line']).includes('host-hang'))
  t.pass("the host's thread started the run and is stuck in it")

  process.kill(node.pid, 'SIGKILL')
  // The host shares the node's stdout: the pipe closes (and `exited` resolves) only once the
  // host has gone too. Without the host's own check this never happens and the test times out.
  await node.exited
  t.ok(!existsSync(`/proc/${host}`) || readFileSync(`/proc/${host}/stat`, 'utf8').split(' ')[2] === 'Z', 'the orphaned host ended itself')

  const lock = await acquireDatabaseLock(dbPath, { wait: false })
  t.equal(lock.mechanism, 'flock', 'the database path is free for the next node')
  await lock.release()
})

import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { captureLog } from '../helpers/log-capture.js'
import { startNode } from '../helpers/node.js'
import { authenticate, openSocket } from '../helpers/raw-socket.js'
import { waitUntil } from '../helpers/wait.js'

/**
 * `/healthz` on a public port: 200 {"status":"ok"} when every supervisor runs and every sandbox
 * host answered a probe lately; 503 naming what fails otherwise; 503 draining during a drain.
 * The admin listener gives the detail. Probes run on a timer: a request never triggers a run.
 */

async function health(base: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/healthz`)
  return { status: res.status, body: await res.json() }
}

t.test('ok: every supervisor up, every host answered a probe lately', async (t) => {
  const { node, http, admin } = await startNode(t, { probeIntervalMs: 100 })
  // Probe runs are runs: wait until a few have been answered since start. (On a loaded machine
  // a probe may take longer than three intervals: then the answer is honestly 503 for a moment,
  // so each check waits for the state rather than taking one sample.)
  await waitUntil(() => node.sandbox.stats[0]!.runs >= 3, 'three probes answered')
  let pub: { status: number; body: any } | undefined
  await waitUntil(async () => (pub = await health(http)).status === 200, 'public health is ok')
  t.same(pub!.body, { status: 'ok' }, 'the public answer says nothing more')
  let detailed: { status: number; body: any } | undefined
  await waitUntil(async () => (detailed = await health(admin)).status === 200, 'detailed health is ok')
  t.match(detailed!.body, {
    status: 'ok',
    version: String,
    pid: process.pid,
    tree: { id: 'root', state: 'running', children: [{ id: 'admin' }, { id: 'sandbox' }, { id: 'verifier' }, { id: 'peers' }, { id: 'gateway:test' }] },
    hosts: [{ index: 0, up: true, pid: node.sandbox.pids[0], last_probe_ok_ms_ago: Number }],
    peers: { registered: 1 },
    quarantined: 0,
  })
  t.ok(detailed!.body.hosts[0].last_probe_ok_ms_ago <= 300, 'answered within three intervals')
  t.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/, 'the admin listener is on loopback')
  t.equal((await fetch(`${http}/metrics`)).status, 404, 'a public port does not serve /metrics')
})

t.test('a request never triggers a probe run', async (t) => {
  const { node, http, admin } = await startNode(t, { probeIntervalMs: 3_600_000 })
  await waitUntil(() => node.sandbox.stats[0]!.runs === 1, 'the start-up probe answered')
  for (let i = 0; i < 20; i++) {
    t.equal((await health(http)).status, 200)
    t.equal((await health(admin)).status, 200)
  }
  t.equal(node.sandbox.stats[0]!.runs, 1, 'forty health checks, no run')
})

t.test('a host that has not answered a probe for three intervals: 503 naming it, ok again once it answers', async (t) => {
  const { node, http, dbPath } = await startNode(t, { probeIntervalMs: 50 })
  const owner = generateKeyPair()
  await node.peers.spawnPeer({ pubkey: owner.publicKey, limits: { timeoutMs: 2_000, cpuMs: 2_000 } })
  const busy = node.peers.play(owner.publicKey, { caller: owner.publicKey, script: 'save_data("started", 1); while (true) {}' }).catch((e: { code: string }) => e.code)
  await waitUntil(() => readdirSync(join(dbPath, owner.publicKey, 'data')).some((f) => f.startsWith('started')), 'the long run started')
  let seen: { status: number; body: any } | undefined
  await waitUntil(async () => (seen = await health(http)).status === 503, 'health turns 503 while the host is busy')
  t.same(seen!.body, { status: 'unavailable', failing: ['sandbox/host-0 (probe)'] })
  t.equal(await busy, 'SCRIPT_TIMEOUT')
  await waitUntil(async () => (await health(http)).status === 200, 'health is ok again once the host answers a probe')
  t.pass('ok again')
})

t.test('a host down: 503 naming it, publicly and in detail', async (t) => {
  const log = captureLog()
  // Every host started after the first dies before it is ready; an intensity this high keeps
  // the sandbox supervisor restarting it for the length of the test.
  const { node, http, admin } = await startNode(t, {
    logger: log.logger,
    faults: ['host-crash-on-restart'],
    sandbox: { processes: 1, intensity: 1_000_000, periodMs: 1_000 },
    probeIntervalMs: 3_600_000,
  })
  t.equal((await health(http)).status, 200)
  process.kill(node.sandbox.pids[0]!, 'SIGKILL')
  await log.waitFor((l) => l.msg === 'child exited' && l['child'] === 'host-0')
  const down = await health(http)
  t.equal(down.status, 503)
  t.equal(down.body.status, 'unavailable')
  t.match(down.body.failing, ['sandbox/host-0'])
  t.same(Object.keys(down.body).sort(), ['failing', 'status'], 'names only')
  const detailed = await health(admin)
  t.equal(detailed.status, 503)
  t.match(detailed.body, { status: 'unavailable', hosts: [{ index: 0, up: false }] })
  const host = detailed.body.tree.children.find((c: { id: string }) => c.id === 'sandbox').children[0]
  t.match(host, { id: 'host-0' })
  t.not(host.status, 'running')
})

t.test('draining: 503 {"status":"draining"} while in-flight work finishes; the admin listener reports to the end', async (t) => {
  const { node, circle, url, http, admin, dbPath } = await startNode(t)
  const socket = await openSocket(url)
  await authenticate(socket, circle)
  const inFlight = socket.call('play', { script: 'save_data("started", 1); const e = Date.now() + 300; while (Date.now() < e) {} "finished"' }, 'slow')
  await waitUntil(() => readdirSync(join(dbPath, circle.publicKey, 'data')).some((f) => f.startsWith('started')), 'the slow run started')
  const closing = node.close()
  t.same(await health(http), { status: 503, body: { status: 'draining' } })
  const detailed = await health(admin)
  t.equal(detailed.status, 503)
  t.match(detailed.body, { status: 'draining', tree: { id: 'root' } })
  t.match(await fetch(`${admin}/metrics`).then((r) => r.text()), /circles_connections_open 1\n/, 'metrics show the drain in progress')
  t.match(await inFlight, { id: 'slow', result: { output: 'finished' } })
  await closing
})

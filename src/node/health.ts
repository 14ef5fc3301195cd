import { join } from 'node:path'
import { VERSION } from '../config/index.js'
import { DEFAULT_QUOTA, type PeerHost } from '../actors/peer/index.js'
import type { LoadLimits } from '../limits/index.js'
import { DEFAULT_LIMITS, type SandboxContextRef, type SandboxPool } from '../sandbox/index.js'
import type { RedisBridge } from '../queue/index.js'
import type { PublicHealth } from '../server/index.js'
import type { SupervisorTree } from '../supervisor/index.js'

const PROBE_SCRIPT = '1 + 1'

/** What the node's health reads: its tree as it runs, and its children as they are now. */
export interface HealthSources {
  readonly tree: () => SupervisorTree
  readonly pool: SandboxPool
  readonly peers: () => PeerHost | undefined
  readonly bridge: () => RedisBridge | undefined
  readonly load: LoadLimits
  readonly draining: () => boolean
  readonly probeIntervalMs: number
}

/**
 * The node's health: `/healthz` (public and detailed). Every sandbox host answers a trivial probe
 * run now and then, and health reads the result — it never triggers a run. Redis away is
 * `degraded`, never `unavailable`: it only limits work between nodes.
 */
export class NodeHealth {
  private readonly probes: { ref: SandboxContextRef; lastOk: number; pending: boolean }[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly sources: HealthSources) {}

  /** Start probing every sandbox host (one probe per host at a time). */
  startProbes(dbPath: string): void {
    const { pool, probeIntervalMs } = this.sources
    const probeKey = `probe-${process.pid}`
    const limits = { ...DEFAULT_LIMITS, timeoutMs: 5_000, cpuMs: 5_000 }
    const now = performance.now()
    for (let host = 0; host < pool.size; host++) {
      const ref = pool.register({ circle: `${probeKey}-${host}`, root: join(dbPath, '.probe'), dbPathLabel: '', limits, quota: DEFAULT_QUOTA }, undefined, host)
      this.probes.push({ ref, lastOk: now, pending: false })
    }
    const probe = () => {
      for (const p of this.probes) {
        // One probe per host at a time: a host busy with a long run is not sent a pile of them.
        if (p.pending) continue
        p.pending = true
        void pool.run(p.ref, { script: PROBE_SCRIPT, caller: '', canWrite: false, canCall: false, timeoutMs: 5_000 }).then((outcome) => {
          p.pending = false
          if (outcome.code === null) p.lastOk = performance.now()
        })
      }
    }
    probe()
    this.timer = setInterval(probe, probeIntervalMs)
    this.timer.unref()
  }

  stopProbes(): void {
    clearInterval(this.timer)
  }

  /** Parts failing now: a supervisor not running, a child down, a probe not answered lately. */
  failing(): string[] {
    const failing: string[] = []
    const walk = (node: SupervisorTree) => {
      if (node.state !== 'running') failing.push(node.id)
      for (const child of node.children) {
        if (child.type === 'supervisor') walk(child)
        else if (child.status !== 'running') failing.push(`${node.id}/${child.id}`)
      }
    }
    walk(this.sources.tree())
    const now = performance.now()
    for (const [i, p] of this.probes.entries()) {
      if (now - p.lastOk > 3 * this.sources.probeIntervalMs) failing.push(`sandbox/host-${i} (probe)`)
    }
    return failing
  }

  /** What any client may read: ok, degraded (Redis away), unavailable (with what fails) or draining. */
  public(): PublicHealth {
    if (this.sources.draining()) return { status: 'draining' }
    const failing = this.failing()
    if (failing.length > 0) return { status: 'unavailable', failing }
    // Redis only limits work between nodes: local circles are served all the same.
    const bridge = this.sources.bridge()
    if (bridge !== undefined && !bridge.connected) return { status: 'degraded', failing: ['redis'] }
    return { status: 'ok' }
  }

  /** What the admin listener shows: the public health, the tree, hosts, peers and the cluster. */
  detailed(): { status: string } & Record<string, unknown> {
    const now = performance.now()
    const bridge = this.sources.bridge()
    return {
      ...this.public(),
      version: VERSION,
      pid: process.pid,
      tree: this.sources.tree(),
      hosts: this.sources.pool.stats.map((h, i) => ({ ...h, last_probe_ok_ms_ago: Math.round(now - (this.probes[i]?.lastOk ?? now)) })),
      peers: this.sources.peers()?.size,
      quarantined: this.sources.load.quarantined,
      cluster: bridge === undefined ? { clustered: false } : { clustered: true, node_id: bridge.nodeId, redis: bridge.connected ? 'connected' : 'unreachable' },
      ...(bridge === undefined ? {} : { cross_node: { ...bridge.counters, ...bridge.depth } }),
    }
  }
}

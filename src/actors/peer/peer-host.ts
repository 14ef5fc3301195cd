import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULTS, positiveIntegerOption } from '../../config/index.js'
import { circlesError } from '../../errors/index.js'
import { parsePublicKey, type PublicKeyHex } from '../../identity/index.js'
import { parsePolicy, readPolicy, writePolicy, type Policy } from '../../policy/index.js'
import type { RunLimits, SandboxPool } from '../../sandbox/index.js'
import { listNamespaces, namespacePath, NAMESPACE_DIRS, type StorageQuota } from '../../storage/index.js'
import { PeerActor, type PeerSettings, type PeerTermination, type PlayOutcome, type PlayRequest } from './actor.js'

/** Settings a peer can override; the rest come from the host's defaults. */
export interface PeerOverrides {
  readonly limits?: Partial<RunLimits>
  readonly quota?: Partial<StorageQuota>
  readonly mailboxCapacity?: number
  readonly maxBatchRuns?: number
  readonly maxBatchesInFlight?: number
  readonly passivateAfterMs?: number
}

export interface PeerHostOptions {
  /** Root of every namespace: `DB_PATH/<pubkey>/…`. */
  readonly dbPath: string
  readonly pool: SandboxPool
  readonly defaults?: PeerOverrides
}

export interface SpawnPeerOptions extends PeerOverrides {
  /** The peer's public key, any accepted form (normalised). */
  readonly pubkey: string
  /** A policy to store with the peer; without one, the stored policy (or the default) applies. */
  readonly policy?: Policy | unknown
}

interface Entry {
  settings: PeerSettings
  actor: PeerActor | undefined
  restarts: number
}

export const DEFAULT_LIMITS: RunLimits = Object.freeze({
  timeoutMs: DEFAULTS.SCRIPT_TIMEOUT_MS,
  cpuMs: DEFAULTS.SCRIPT_CPU_MS,
  memoryMb: DEFAULTS.SCRIPT_MEMORY_MB,
  maxOutputBytes: DEFAULTS.MAX_OUTPUT_BYTES,
  maxLogBytes: DEFAULTS.MAX_LOG_BYTES,
})

export const DEFAULT_QUOTA: StorageQuota = Object.freeze({
  maxDocumentBytes: DEFAULTS.MAX_DOCUMENT_BYTES,
  maxNamespaceBytes: DEFAULTS.MAX_NAMESPACE_BYTES,
  maxDocuments: DEFAULTS.MAX_DOCUMENTS,
  maxNameBytes: DEFAULTS.MAX_NAME_BYTES,
})

/** A handle on a hosted peer context. */
export interface PeerRef {
  readonly pubkey: PublicKeyHex
  readonly policy: Policy
  readonly limits: RunLimits
  /** Run a script in this context (activating it if it was passivated). */
  play(request: PlayRequest): Promise<PlayOutcome>
}

/**
 * The peer contexts one node hosts: a directory of every registered peer, of which only the busy
 * ones have a live actor. An idle actor passivates itself; the next message builds a new one from
 * what is on disk. A crashed actor is dropped — its tasks answered with errors — and rebuilt the
 * same way on the next message (a lazy one_for_one restart).
 *
 * @example
 * const peers = new PeerHost({ dbPath: './data', pool })
 * const bob = await peers.spawnPeer({ pubkey: bobKey, policy: { run: 'authenticated', write: 'owner' } })
 * const { output } = await bob.play({ caller: aliceKey, script: 'load_data("profile")' })
 */
export class PeerHost {
  private readonly dbPath: string
  private readonly pool: SandboxPool
  private readonly defaults: PeerOverrides
  private readonly entries = new Map<PublicKeyHex, Entry>()
  private stopping = false
  /** Actors built, passivated and crashed since start (for metrics). */
  readonly counters = { activations: 0, passivations: 0, crashes: 0 }

  constructor(options: PeerHostOptions) {
    this.dbPath = options.dbPath
    this.pool = options.pool
    this.defaults = options.defaults ?? {}
  }

  /** Peers registered, and how many of them have a live actor. */
  get size(): { readonly registered: number; readonly active: number } {
    let active = 0
    for (const entry of this.entries.values()) if (entry.actor !== undefined) active++
    return { registered: this.entries.size, active }
  }

  /**
   * Host a peer: create its namespace, store its policy (when given), and register it. Spawning
   * a peer that is already hosted updates its policy and settings (its live actor, if any,
   * finishes its queue under the old ones).
   */
  async spawnPeer(options: SpawnPeerOptions): Promise<PeerRef> {
    const pubkey = parsePublicKey(options.pubkey)
    const root = namespacePath(this.dbPath, pubkey)
    for (const dir of NAMESPACE_DIRS) await mkdir(join(root, dir), { recursive: true, mode: 0o700 })
    let policy: Policy
    if (options.policy !== undefined) {
      policy = parsePolicy(options.policy)
      await writePolicy(root, policy)
    } else {
      policy = await readPolicy(root)
    }
    const settings = this.settingsFor(pubkey, root, policy, options)
    const existing = this.entries.get(pubkey)
    if (existing !== undefined) existing.settings = settings
    else this.entries.set(pubkey, { settings, actor: undefined, restarts: 0 })
    return this.ref(pubkey)!
  }

  /** Register every namespace already under the db path (the multi-peer node of DESIGN §9). */
  async adoptExisting(overrides: PeerOverrides = {}): Promise<number> {
    let adopted = 0
    for (const pubkey of await listNamespaces(this.dbPath)) {
      if (this.entries.has(pubkey)) continue
      await this.spawnPeer({ pubkey, ...overrides })
      adopted++
    }
    return adopted
  }

  has(pubkey: PublicKeyHex): boolean {
    return this.entries.has(pubkey)
  }

  /** A handle on a hosted peer, or undefined. */
  ref(pubkey: PublicKeyHex): PeerRef | undefined {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return undefined
    return {
      pubkey,
      policy: entry.settings.policy,
      limits: entry.settings.limits,
      play: (request) => this.play(pubkey, request),
    }
  }

  /** The policy of a hosted peer. */
  policyOf(pubkey: PublicKeyHex): Policy | undefined {
    return this.entries.get(pubkey)?.settings.policy
  }

  /** Run a script in a hosted peer's context. Rejects UNKNOWN_CIRCLE for a peer not hosted here. */
  play(pubkey: PublicKeyHex, request: PlayRequest): Promise<PlayOutcome> {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return Promise.reject(circlesError('UNKNOWN_CIRCLE', `No circle ${pubkey} is served here`))
    if (this.stopping) return Promise.reject(circlesError('SHUTTING_DOWN'))
    return this.activate(entry).play(request)
  }

  /** The lifecycle state of a peer's actor ('passivated' when it has none). */
  stateOf(pubkey: PublicKeyHex): string | undefined {
    const entry = this.entries.get(pubkey)
    if (entry === undefined) return undefined
    return entry.actor?.state ?? 'passivated'
  }

  /** Kill a peer's actor: its queued and running tasks are answered with errors; the next message rebuilds it. */
  kill(pubkey: PublicKeyHex): boolean {
    const actor = this.entries.get(pubkey)?.actor
    if (actor === undefined) return false
    actor.kill()
    return true
  }

  /** Drain: every live actor finishes its running batch; queued tasks are answered SHUTTING_DOWN. */
  async stop(): Promise<void> {
    this.stopping = true
    await Promise.all([...this.entries.values()].map((e) => e.actor?.stop()))
  }

  /** Running and queued tasks across all peers. */
  get load(): number {
    let load = 0
    for (const entry of this.entries.values()) load += entry.actor?.load ?? 0
    return load
  }

  private activate(entry: Entry): PeerActor {
    if (entry.actor !== undefined) return entry.actor
    this.counters.activations++
    const actor: PeerActor = new PeerActor(entry.settings, this.pool, {
      onTerminated: (reason: PeerTermination) => {
        if (entry.actor === actor) entry.actor = undefined
        if (reason === 'passivated') this.counters.passivations++
        if (reason === 'crashed') {
          this.counters.crashes++
          entry.restarts++
        }
      },
    })
    entry.actor = actor
    return actor
  }

  private settingsFor(pubkey: PublicKeyHex, root: string, policy: Policy, overrides: PeerOverrides): PeerSettings {
    const d = this.defaults
    const positive = positiveIntegerOption
    const limits = { ...DEFAULT_LIMITS, ...d.limits, ...overrides.limits }
    for (const [key, value] of Object.entries(limits)) positive(value, 1, `limits.${key}`)
    const quota = { ...DEFAULT_QUOTA, ...d.quota, ...overrides.quota }
    for (const [key, value] of Object.entries(quota)) positive(value, 1, `quota.${key}`)
    return {
      pubkey,
      dbPath: this.dbPath,
      root,
      policy,
      limits,
      quota,
      mailboxCapacity: positive(overrides.mailboxCapacity ?? d.mailboxCapacity, DEFAULTS.MAILBOX_CAPACITY, 'mailboxCapacity'),
      maxBatchRuns: positive(overrides.maxBatchRuns ?? d.maxBatchRuns, DEFAULTS.MAX_BATCH_RUNS, 'maxBatchRuns'),
      maxBatchesInFlight: positive(overrides.maxBatchesInFlight ?? d.maxBatchesInFlight, DEFAULTS.MAX_BATCHES_IN_FLIGHT, 'maxBatchesInFlight'),
      passivateAfterMs: positive(overrides.passivateAfterMs ?? d.passivateAfterMs, DEFAULTS.PASSIVATE_AFTER_MS, 'passivateAfterMs'),
    }
  }
}

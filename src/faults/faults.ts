/**
 * Faults injected for tests only: named in the `CIRCLES_TEST_FAULTS` environment variable
 * (comma-separated) or in a node's options. Production never sets them; each names a failure
 * that cannot be provoked through the protocol once the node is correct.
 *
 * - `answer-throw`: encoding the answer of a play whose script contains `FAULT_ANSWER_THROW`
 *   throws (the answer path must turn it into INTERNAL_ERROR with a correlation id).
 * - `answer-uncaught`: the same script makes the answer path throw where nothing catches it (the
 *   node's last-resort handler must log it and keep serving).
 * - `host-crash-on-start`: sandbox host processes exit before they are ready, from the first one
 *   on (the node must refuse to start, with the reason, rather than wait for a host).
 * - `host-crash-on-restart`: the first host of each position starts; every host started after
 *   one died exits before it is ready (a crash loop on a running node: the sandbox supervisor
 *   must give up, the failure climb to the root, and the node exit non-zero).
 * - `host-hang`: a sandbox host's thread blocks for good on a run whose script contains the
 *   marker (a hang no time limit can interrupt: the pool's watchdog must replace the host).
 * - `write-pause`: a sandbox host's thread blocks for good in the middle of writing a document
 *   whose name contains the marker — its new text fsynced in a temporary file, not yet renamed
 *   over the document — after saying so on stderr (a kill then lands mid-write for certain).
 * - `bridge-crash`: `faults.trigger('bridge-crash', '')` makes the Redis bridge's own code fail
 *   (its supervisor starts a new bridge, under a new node id).
 * - `listener-crash`: `faults.trigger('listener-crash', name)` makes the listener of circle `name`
 *   fail (its connections go with it; the gateway supervisor starts it again). Only a test that
 *   holds the node's `Faults` can pull it: no request to the node reaches it.
 */
export type FaultName = 'answer-throw' | 'answer-uncaught' | 'host-crash-on-start' | 'host-crash-on-restart' | 'host-hang' | 'write-pause' | 'listener-crash' | 'bridge-crash'

export const FAULT_NAMES: readonly FaultName[] = ['answer-throw', 'answer-uncaught', 'host-crash-on-start', 'host-crash-on-restart', 'host-hang', 'write-pause', 'listener-crash', 'bridge-crash']

/** The marker a script (or, for write-pause, a document name) carries to trigger a fault. */
export const FAULT_MARKER = 'FAULT_ANSWER_THROW'

export const FAULTS_ENV = 'CIRCLES_TEST_FAULTS'

/** Faults named in the environment (unknown names are ignored). */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): readonly FaultName[] {
  const text = env[FAULTS_ENV]
  if (text === undefined || text === '') return []
  return text.split(',').filter((name): name is FaultName => (FAULT_NAMES as readonly string[]).includes(name))
}

/** The faults one node has switched on, and the seam a test pulls a triggered fault through. */
export class Faults {
  private readonly on: ReadonlySet<FaultName>
  private readonly handlers = new Map<FaultName, Set<(target: string) => boolean>>()
  constructor(names: readonly FaultName[] = faultsFromEnv()) {
    this.on = new Set(names)
  }

  /**
   * Where the code a triggered fault breaks listens for it (when the fault is on): `handler`
   * says whether `target` named it. Returns the function that stops listening.
   */
  onTrigger(name: FaultName, handler: (target: string) => boolean): () => void {
    if (!this.has(name)) return () => {}
    let set = this.handlers.get(name)
    if (set === undefined) this.handlers.set(name, (set = new Set()))
    set.add(handler)
    return () => set.delete(handler)
  }

  /**
   * Pull a triggered fault for `target` (for `listener-crash`, a circle's name); returns how many
   * listeners it broke (0 when the fault is off, or nothing is named `target`).
   *
   * @example
   * const faults = new Faults(['listener-crash'])
   * const node = await CircleNode.start({ …, faults })
   * faults.trigger('listener-crash', 'alice')
   */
  trigger(name: FaultName, target: string): number {
    if (!this.has(name)) return 0
    let broken = 0
    for (const handler of [...(this.handlers.get(name) ?? [])]) if (handler(target)) broken++
    return broken
  }

  has(name: FaultName): boolean {
    return this.on.size > 0 && this.on.has(name)
  }

  get names(): readonly FaultName[] {
    return [...this.on]
  }
}

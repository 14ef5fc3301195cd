/**
 * Every Redis key Circles uses, built here and nowhere else. The layout keeps the original
 * names (`<prefix><pubkey>` queue, task hash by task id) with Redis Cluster hash tags (`{…}`) so
 * that the keys of one multi-key operation share a hash slot:
 *
 *   <prefix>{<pubkey>}                     list   the context's task queue (task ids, oldest first)
 *   <prefix>{<pubkey>}:<task_id>           hash   a task: its request and status; once completed, its
 *                                                 completion record (the answer) until its gateway reads it
 *   <prefix>{<pubkey>}:processing          list   tasks taken by the context's owner, not completed
 *   <prefix>lease:{<pubkey>}               string the node that owns the context: <node_id>.<epoch>.<run hint>
 *   <prefix>node:{<node_id>}:wake:<epoch>  list   new tasks for that node (owner side), or contexts to take
 *   <prefix>node:{<node_id>}:replies       list   replies for tasks that node queued (gateway side)
 *   <prefix>node:{<node_id>}:alive         string present while the node lives (expires)
 *   <prefix>cluster:secret-check           string a MAC made with the cluster secret (expires unless refreshed)
 *
 * The first four share the context's slot (queueing, taking and completing a task are single
 * Lua scripts); a node's wake and reply lists share the node's slot, so one blocking BLMPOP
 * reads both.
 */
export class QueueKeys {
  constructor(readonly prefix: string) {}

  queue(pubkey: string): string {
    return `${this.prefix}{${pubkey}}`
  }

  task(pubkey: string, taskId: string): string {
    return `${this.prefix}{${pubkey}}:${taskId}`
  }

  /** The prefix of a context's task keys (a Lua script appends the task id). */
  taskPrefix(pubkey: string): string {
    return `${this.prefix}{${pubkey}}:`
  }

  processing(pubkey: string): string {
    return `${this.prefix}{${pubkey}}:processing`
  }

  lease(pubkey: string): string {
    return `${this.prefix}lease:{${pubkey}}`
  }

  /** A node's wake list for one epoch (a node starts a new epoch at each connection to Redis). */
  wake(nodeId: string, epoch: number): string {
    return `${this.prefix}node:{${nodeId}}:wake:${epoch}`
  }

  replies(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:replies`
  }

  /** What every node's list names start with (a script on one server completes them: `<id>}:…`). */
  nodePrefix(): string {
    return `${this.prefix}node:{`
  }

  alive(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:alive`
  }

  /** The cluster secret's check value (task-codec.ts, secretCheckValue). */
  secretCheck(): string {
    return `${this.prefix}cluster:secret-check`
  }
}

/** Default key prefix (the original design's). */
export const DEFAULT_PREFIX = 'rhailib:'

/** A prefix must be short printable ASCII without braces (it would break the hash tags). */
export function isValidPrefix(prefix: string): boolean {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)
}

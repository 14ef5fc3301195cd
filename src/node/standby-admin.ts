import { VERSION } from '../config/index.js'
import { acquireDatabaseLock, type DatabaseLock, type DatabaseLockHolder } from '../storage/index.js'
import { AdminServer, parseDomains, type Domain } from '../server/index.js'
import { optionFail, type CircleNodeOptions } from './node-options.js'

const STANDBY_METRICS = [
  '# HELP circles_standby 1 while this process waits, as a standby, for its database path\'s lock',
  '# TYPE circles_standby gauge',
  'circles_standby 1',
  '',
].join('\n')

/**
 * The admin listener of a standby while it waits for its database path's lock: `/healthz`
 * answers 503 `{"status":"standby"}` (it serves nothing yet, so a load balancer keeps away, and
 * an operator sees it is there), `/metrics` only `circles_standby 1`. Once the lock is taken it
 * is closed and the node's own admin listener binds the same port.
 */
export async function startStandbyAdmin(admin: { readonly host?: string; readonly port: number }, domains: readonly Domain[], dbPath: string, holder: () => DatabaseLockHolder | undefined): Promise<AdminServer> {
  const server = new AdminServer({
    host: admin.host ?? '127.0.0.1',
    port: admin.port,
    domains,
    metrics: async () => ({ text: STANDBY_METRICS, contentType: 'text/plain; version=0.0.4; charset=utf-8' }),
    health: () => ({ status: 'standby', version: VERSION, pid: process.pid, db_path: dbPath, holder_pid: holder()?.pid ?? null }),
  })
  await server.listen()
  return server
}

/**
 * Take the exclusive lock on the node's database path: `fail` refuses at once while another
 * process holds it (DB_LOCKED); `wait` waits for the holder to go, as a standby whose admin
 * listener answers meanwhile — then hands its port to the node's (the options returned name it).
 */
export async function acquireNodeLock(options: CircleNodeOptions): Promise<{ dbLock: DatabaseLock; options: CircleNodeOptions }> {
  const log = options.logger
  let holder: DatabaseLockHolder | undefined
  const standby = options.lock === 'wait' && options.admin !== undefined ? await startStandbyAdmin(options.admin, parseDomains(options.domains, 'domains', optionFail), options.dbPath, () => holder) : undefined
  let dbLock: DatabaseLock
  try {
    dbLock = await acquireDatabaseLock(options.dbPath, {
      wait: options.lock === 'wait',
      onWaiting: (found) => {
        holder = found
        log?.info({ db_path: options.dbPath, holder_pid: found.pid ?? null, admin: standby?.url ?? null }, 'waiting for the database lock (standby)')
      },
    })
  } finally {
    await standby?.stop()
  }
  return { dbLock, options: standby === undefined ? options : { ...options, admin: { ...options.admin!, port: standby.port } } }
}

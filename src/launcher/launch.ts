import { open, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createSecureContext } from 'node:tls'
import { circlesError, isCirclesError } from '../errors/index.js'
import { loadOrCreateKeyFile } from '../identity/index.js'
import { CircleNode, type CircleNodeOptions, type ServedCircle } from '../node/index.js'
import type { TlsCredentials } from '../server/index.js'
import { readCirclesConfig, type CircleConfig } from './circles-config.js'

export interface LaunchOptions {
  readonly configPath: string
  readonly dbPath: string
  /** Further node options (limits, sandbox size, logging). */
  readonly node?: Partial<Omit<CircleNodeOptions, 'dbPath' | 'circles'>>
}

export interface Launched {
  readonly node: CircleNode
  readonly circles: readonly (ServedCircle & { readonly keyCreated: boolean })[]
}

/** Where a circle's key pair lives: `DB_PATH/keys/<name>.key` (mode 0600). */
export function keyPathFor(dbPath: string, name: string): string {
  return join(dbPath, 'keys', `${name}.key`)
}

/**
 * Read a circle's certificate and key, and check that they load together (CONFIG_INVALID names
 * the field). A private key other users may read is refused; group access is allowed (Debian's
 * `ssl-cert` group reads keys under /etc/ssl/private, mode 0640). The mode is read from the open
 * file, so it is the file that is read.
 */
async function loadTls(tls: NonNullable<CircleConfig['tls']>, field: string): Promise<TlsCredentials> {
  const read = async (path: string, key: 'cert_path' | 'key_path') => {
    let handle
    try {
      handle = await open(path, 'r')
      if (key === 'key_path' && ((await handle.stat()).mode & 0o007) !== 0) {
        throw circlesError('CONFIG_INVALID', `${field}.key_path: ${path} is open to other users: chmod o-rwx ${path} (group access is fine)`, { field: `${field}.key_path` })
      }
      return await handle.readFile()
    } catch (error) {
      if ((error as { code?: string }).code === 'CONFIG_INVALID') throw error
      throw circlesError('CONFIG_INVALID', `${field}.${key}: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`, { field: `${field}.${key}` })
    } finally {
      await handle?.close()
    }
  }
  const credentials = { cert: await read(tls.certPath, 'cert_path'), key: await read(tls.keyPath, 'key_path') }
  try {
    createSecureContext(credentials)
  } catch (error) {
    throw circlesError('CONFIG_INVALID', `${field}: the certificate and key do not load as a PEM pair (${(error as Error).message})`, { field })
  }
  return credentials
}

/**
 * Launch every circle of a `circles.json` in this process: validate the file, load or create
 * each circle's key pair, start the node, then run each circle's `script_path` once in its own
 * context. A failing init script stops the launch with CONFIG_INVALID naming it. (The contract:
 * docs/contexts.md, "Launching from circles.json".)
 *
 * @example
 * const { node, circles } = await launch({ configPath: 'circles.json', dbPath: './data' })
 */
export async function launch(options: LaunchOptions): Promise<Launched> {
  const dbPath = resolve(options.dbPath)
  const config = await readCirclesConfig(options.configPath)
  const tls = await Promise.all(config.map((c, i) => (c.tls === undefined ? undefined : loadTls(c.tls, `circles[${i}].tls`))))
  const keys = await Promise.all(config.map((c) => loadOrCreateKeyFile(keyPathFor(dbPath, c.name))))
  const node = await CircleNode.start({
    ...options.node,
    dbPath,
    circles: config.map((c, i) => ({
      name: c.name,
      keyPair: keys[i]!.keyPair,
      host: c.host,
      port: c.port,
      policy: c.policy,
      overrides: c.overrides,
      ...(tls[i] === undefined ? {} : { tls: tls[i] }),
      ...(c.domains === undefined ? {} : { domains: c.domains }),
      ...(c.allowedOrigins === undefined ? {} : { allowedOrigins: c.allowedOrigins }),
    })),
  })
  try {
    for (const [i, circle] of config.entries()) {
      if (circle.scriptPath === undefined) continue
      const field = `circles[${i}].script_path`
      let script: string
      try {
        script = await readFile(circle.scriptPath, 'utf8')
      } catch (error) {
        throw circlesError('CONFIG_INVALID', `${field}: cannot read ${circle.scriptPath} (${(error as NodeJS.ErrnoException).code})`, { field })
      }
      const pubkey = keys[i]!.keyPair.publicKey
      try {
        await node.peers.play(pubkey, { caller: pubkey, script })
      } catch (error) {
        const code = isCirclesError(error) ? error.code : 'INTERNAL_ERROR'
        throw circlesError('CONFIG_INVALID', `${field}: the init script of "${circle.name}" failed: ${code}: ${(error as Error).message}`, { field })
      }
    }
  } catch (error) {
    await node.close()
    throw error
  }
  return {
    node,
    circles: node.served.map((s, i) => ({ ...s, keyCreated: keys[i]!.created })),
  }
}

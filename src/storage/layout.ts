import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isCanonicalPublicKey, type PublicKeyHex } from '../identity/index.js'

/** The folders of a namespace (docs/contexts.md, "Storage"): documents, configuration (policy), logs. */
export const NAMESPACE_DIRS = ['data', 'config', 'logs'] as const

/** `DB_PATH/<pubkey>`: the root of a peer's namespace. */
export function namespacePath(dbPath: string, pubkey: PublicKeyHex): string {
  return join(dbPath, pubkey)
}

/** Public keys of the namespaces present under `dbPath` (directories named by a canonical key). */
export async function listNamespaces(dbPath: string): Promise<PublicKeyHex[]> {
  try {
    const entries = await readdir(dbPath, { withFileTypes: true })
    return entries.filter((e) => e.isDirectory() && isCanonicalPublicKey(e.name)).map((e) => e.name)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

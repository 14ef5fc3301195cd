import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { replaceFileSync } from '../storage/durable-file.js'
import { DEFAULT_POLICY, parsePolicy, type Policy } from './policy.js'

/** Where a context keeps its policy: `DB_PATH/<pubkey>/config/policy.json`. */
export function policyPath(namespaceRoot: string): string {
  return join(namespaceRoot, 'config', 'policy.json')
}

/** The stored policy of a namespace; the default policy when none is stored. */
export async function readPolicy(namespaceRoot: string): Promise<Policy> {
  let text: string
  try {
    text = await readFile(policyPath(namespaceRoot), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_POLICY
    throw error
  }
  return parsePolicy(JSON.parse(text), policyPath(namespaceRoot))
}

/** Store a policy with the namespace (a durable atomic replace: file and directory synced). */
export async function writePolicy(namespaceRoot: string, policy: Policy): Promise<void> {
  const path = policyPath(namespaceRoot)
  await mkdir(join(namespaceRoot, 'config'), { recursive: true, mode: 0o700 })
  replaceFileSync(path, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o600 })
}

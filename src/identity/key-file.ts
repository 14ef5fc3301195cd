import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { circlesError } from '../errors/index.js'
import { replaceFileSync } from '../storage/durable-file.js'
import { keyPairFromSecret, generateKeyPair, isSecretKeyHex, type KeyPair } from './keypair.js'

/**
 * Key files hold one key pair as JSON: `{ "public_key": "02…", "secret_key": "…" }`, mode 0600.
 * A key file readable by group or others is refused, as ssh refuses such identity files.
 */
export async function readKeyFile(path: string): Promise<KeyPair> {
  let text: string
  try {
    const info = await stat(path)
    if ((info.mode & 0o077) !== 0) {
      throw circlesError('KEY_FILE_INVALID', `${path}: key file must not be readable by others (chmod 600 ${path})`)
    }
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as { code?: string }).code === 'KEY_FILE_INVALID') throw error
    throw circlesError('KEY_FILE_INVALID', `${path}: cannot read key file (${(error as Error).message})`)
  }
  return keyPairFromText(text, path)
}

/**
 * A key pair from what a key file holds — its JSON, or a 64-hex secret key — read from `source`
 * (a path, or "standard input", for messages).
 */
export function keyPairFromText(text: string, source: string): KeyPair {
  const trimmed = text.trim()
  if (isSecretKeyHex(trimmed)) return keyPairFromSecret(trimmed)
  let parsed: unknown
  try {
    parsed = JSON.parse(trimmed)
  } catch {
    throw circlesError('KEY_FILE_INVALID', `${source}: not JSON and not a 64-hex secret key`)
  }
  const secret = (parsed as { secret_key?: unknown } | null)?.secret_key
  if (typeof secret !== 'string') throw circlesError('KEY_FILE_INVALID', `${source}: "secret_key" must be a hex string`)
  const pair = keyPairFromSecret(secret)
  const declared = (parsed as { public_key?: unknown }).public_key
  if (declared !== undefined && declared !== pair.publicKey) {
    throw circlesError('KEY_FILE_INVALID', `${source}: "public_key" does not belong to "secret_key"`)
  }
  return pair
}

/** Write a key pair atomically with mode 0600, creating parent directories (0700). */
export async function writeKeyFile(path: string, pair: KeyPair): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  replaceFileSync(path, `${JSON.stringify({ public_key: pair.publicKey, secret_key: pair.secretKey }, null, 2)}\n`, { mode: 0o600 })
}

/** The key pair stored at `path`, generated and stored there first if the file does not exist. */
export async function loadOrCreateKeyFile(path: string): Promise<{ keyPair: KeyPair; created: boolean }> {
  try {
    await stat(path)
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') throw error
    const keyPair = generateKeyPair()
    await writeKeyFile(path, keyPair)
    return { keyPair, created: true }
  }
  return { keyPair: await readKeyFile(path), created: false }
}

/** Whether a key given on a command line is a secret key itself (64 hex), not a key file's path. */
export function isSecretKeyArgument(value: string): boolean {
  return isSecretKeyHex(value)
}

/** A key given on a command line: a 64-hex secret key, or the path of a key file. */
export async function resolveKeyArgument(value: string): Promise<KeyPair> {
  if (isSecretKeyArgument(value)) return keyPairFromSecret(value)
  return readKeyFile(value)
}

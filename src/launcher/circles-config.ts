import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { configKeyOf, isPositiveInteger } from '../config/index.js'
import { circlesError, isCirclesError } from '../errors/index.js'
import { parsePolicy, type Policy } from '../policy/index.js'
import type { PeerOverrides } from '../actors/peer/index.js'
import { parseDomains, parseOrigins } from '../server/index.js'

/** One circle of `circles.json`, validated. */
export interface CircleConfig {
  readonly name: string
  readonly port: number
  readonly host: string
  /** Absolute path of the init script, resolved against the config file's directory. */
  readonly scriptPath?: string
  readonly policy: Policy
  readonly overrides: PeerOverrides
  /** Absolute paths of the PEM certificate and key, when the circle serves https/wss. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string }
  /** The names the circle's port answers to (validated; absent: the command line's default). */
  readonly domains?: readonly string[]
  /** Browser origins that may connect besides the port's own (validated; absent: the command line's default). */
  readonly allowedOrigins?: readonly string[]
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
const CIRCLE_KEYS = new Set(['name', 'port', 'host', 'script_path', 'policy', 'limits', 'tls', 'domains', 'allowed_origins'])
const TLS_KEYS = ['cert_path', 'key_path'] as const

/** The limits circles.json may set, by where each goes; each key is its option's name spelt snake_case (configKeyOf). */
const LIMIT_GROUPS = {
  limits: ['timeoutMs', 'cpuMs', 'memoryMb', 'maxOutputBytes', 'maxLogBytes', 'maxLogLines', 'maxEmits', 'maxEmitBytes', 'maxNotifyValueBytes'],
  quota: ['maxDocumentBytes', 'maxNamespaceBytes', 'maxDocuments'],
  top: ['mailboxCapacity', 'passivateAfterMs'],
} as const

/** `limits` keys in circles.json and where each goes. */
const LIMIT_KEYS: Readonly<Record<string, readonly [keyof typeof LIMIT_GROUPS, string]>> = Object.fromEntries(
  (Object.keys(LIMIT_GROUPS) as (keyof typeof LIMIT_GROUPS)[]).flatMap((group) => LIMIT_GROUPS[group].map((name) => [configKeyOf(name), [group, name] as const])),
)

function invalid(field: string, rule: string): never {
  throw circlesError('CONFIG_INVALID', `${field} ${rule}`, { field })
}

function parseLimits(value: unknown, field: string): PeerOverrides {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(field, 'must be an object')
  const limits: Record<string, number> = {}
  const quota: Record<string, number> = {}
  const top: Record<string, number> = {}
  for (const [key, raw] of Object.entries(value)) {
    const target = Object.hasOwn(LIMIT_KEYS, key) ? LIMIT_KEYS[key] : undefined
    if (target === undefined) invalid(`${field}.${key}`, `is not a limit (${Object.keys(LIMIT_KEYS).join(', ')})`)
    if (!isPositiveInteger(raw)) invalid(`${field}.${key}`, 'must be a positive integer')
    const [group, name] = target
    ;(group === 'limits' ? limits : group === 'quota' ? quota : top)[name] = raw
  }
  if (limits['memoryMb'] !== undefined && limits['memoryMb'] < 8) invalid(`${field}.memory_mb`, 'must be at least 8')
  return {
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(Object.keys(quota).length > 0 ? { quota } : {}),
    ...top,
  }
}

function parseTls(value: unknown, field: string, baseDir: string): CircleConfig['tls'] {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(field, 'must be an object { "cert_path", "key_path" }')
  const tls = value as Record<string, unknown>
  for (const key of Object.keys(tls)) {
    if (!(TLS_KEYS as readonly string[]).includes(key)) invalid(`${field}.${key}`, `is not a TLS setting (${TLS_KEYS.join(', ')})`)
  }
  for (const key of TLS_KEYS) {
    if (typeof tls[key] !== 'string' || tls[key] === '') invalid(`${field}.${key}`, 'must be a non-empty string (a PEM file, relative to the config file)')
  }
  return { certPath: resolve(baseDir, tls['cert_path'] as string), keyPath: resolve(baseDir, tls['key_path'] as string) }
}

/**
 * Validate the contents of a `circles.json`: an array of circles. Every problem is a
 * CONFIG_INVALID error whose message names the field (`circles[1].port …`).
 */
export function parseCirclesConfig(value: unknown, baseDir: string): CircleConfig[] {
  if (!Array.isArray(value)) invalid('circles', 'must be an array of circles')
  if (value.length === 0) invalid('circles', 'must list at least one circle')
  const names = new Set<string>()
  const ports = new Set<number>()
  return value.map((item, i): CircleConfig => {
    const field = `circles[${i}]`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) invalid(field, 'must be an object')
    const circle = item as Record<string, unknown>
    for (const key of Object.keys(circle)) {
      if (!CIRCLE_KEYS.has(key)) invalid(`${field}.${key}`, `is not a circle setting (${[...CIRCLE_KEYS].join(', ')})`)
    }
    const { name, port, host = '127.0.0.1', script_path: scriptPath } = circle
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      invalid(`${field}.name`, 'must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit')
    }
    if (names.has(name)) invalid(`${field}.name`, `"${name}" is used twice`)
    names.add(name)
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      invalid(`${field}.port`, 'must be an integer from 0 to 65535 (0: any free port)')
    }
    if (port !== 0 && ports.has(port)) invalid(`${field}.port`, `${port} is used twice`)
    ports.add(port)
    if (typeof host !== 'string' || host === '') invalid(`${field}.host`, 'must be a non-empty string')
    if (scriptPath !== undefined && (typeof scriptPath !== 'string' || scriptPath === '')) {
      invalid(`${field}.script_path`, 'must be a non-empty string')
    }
    const policy = parsePolicy(circle['policy'], `${field}.policy`)
    const tls = parseTls(circle['tls'], `${field}.tls`, baseDir)
    const { domains, allowed_origins: allowedOrigins } = circle
    parseDomains(domains, `${field}.domains`, invalid)
    parseOrigins(allowedOrigins, `${field}.allowed_origins`, invalid)
    return {
      name,
      port,
      host,
      ...(scriptPath === undefined ? {} : { scriptPath: resolve(baseDir, scriptPath as string) }),
      policy,
      overrides: parseLimits(circle['limits'], `${field}.limits`),
      ...(tls === undefined ? {} : { tls }),
      ...(domains === undefined ? {} : { domains: domains as string[] }),
      ...(allowedOrigins === undefined ? {} : { allowedOrigins: allowedOrigins as string[] }),
    }
  })
}

/** Read and validate a `circles.json` file. */
export async function readCirclesConfig(path: string): Promise<CircleConfig[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw circlesError('CONFIG_INVALID', `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw circlesError('CONFIG_INVALID', `${path}: not valid JSON (${(error as Error).message})`)
  }
  try {
    return parseCirclesConfig(value, dirname(resolve(path)))
  } catch (error) {
    if (isCirclesError(error)) throw circlesError(error.code, `${path}: ${error.message}`, error.details)
    throw error
  }
}

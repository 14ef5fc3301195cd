import { readFile, rm, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { circlesError, isCirclesError } from '../errors/index.js'
import { generateKeyPair, isSecretKeyArgument, loadOrCreateKeyFile, resolveKeyArgument, type KeyPair } from '../identity/index.js'
import { silentLogger } from '../log/index.js'
import { CircleNode } from '../node/index.js'
import { parsePolicy, type Policy } from '../policy/index.js'
import { namespacePath } from '../storage/index.js'
import { HelpRequested, commandHelp, parseOptions, type CliIo, type CommandSpec } from './run-cli.js'

export const CONTEXT_CREATE_COMMAND = {
  name: 'context create',
  synopsis: '--db-path DIR [--key KEY_OR_FILE] [--policy JSON] [--script FILE]',
  summary: [
    'Create a context under a database path, for a worker (or a launch) on that path to serve:',
    'its namespace, its policy, and what its init script stores. Run it while no process',
    'serves the path (a worker adopts the contexts under its path when it starts). Prints the',
    "context's public key as JSON (with its secret key when no --key is given: keep it, it is",
    "the context's owner)."
  ].join('\n'),
  options: {
    'db-path': { type: 'string', arg: 'DIR', help: 'the database path to create the context under' },
    key: { type: 'string', arg: 'KEY_OR_FILE', help: "the owner's 64-hex secret key, or key file: read, or made (mode 0600) when it does not exist (default: a new key, printed)" },
    policy: { type: 'string', arg: 'JSON', help: `who may run, write, call out and subscribe, e.g. '{"run":"anonymous","write":"owner"}' (default: run authenticated, write owner, call owner, subscribe as run)` },
    script: { type: 'string', arg: 'FILE', help: 'an init script run once in the new context as its owner; if it fails, nothing is created' },
  },
} as const satisfies CommandSpec

function usage(message: string): Error {
  return circlesError('USAGE', `context create: ${message}`)
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** Start a node on the path with no listener: it takes the path's lock and runs the init script. */
async function startNode(dbPath: string): Promise<CircleNode> {
  try {
    return await CircleNode.start({ dbPath, circles: [], adoptExisting: false, sandbox: { processes: 1 }, logger: silentLogger(), lastResort: false })
  } catch (error) {
    if (isCirclesError(error) && error.code === 'DB_LOCKED') {
      throw circlesError('DB_LOCKED', `${error.message}: stop it first, and start it again once the context is created`, error.details)
    }
    throw error
  }
}

/**
 * `circles context create --db-path DIR [--key FILE] [--policy JSON] [--script FILE]`: make a
 * context's namespace under a database path, with its policy, and run its init script once as
 * its owner — what `circles launch` does for a circle of circles.json, for a context a worker
 * serves. Nothing is left under the path when the script fails.
 */
async function createContext(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(CONTEXT_CREATE_COMMAND, argv)
  if (values['db-path'] === undefined) throw usage('--db-path DIR is required')
  const dbPath = resolve(values['db-path'])
  let policy: Policy | undefined
  if (values.policy !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(values.policy)
    } catch {
      throw usage(`--policy is not JSON: ${values.policy}`)
    }
    try {
      policy = parsePolicy(parsed, '--policy')
    } catch (error) {
      throw usage((error as Error).message)
    }
  }
  let script: string | undefined
  if (values.script !== undefined) {
    try {
      script = await readFile(values.script, 'utf8')
    } catch (error) {
      throw usage(`cannot read ${values.script} (${(error as NodeJS.ErrnoException).code})`)
    }
  }
  let keyPair: KeyPair
  let keyCreated = true
  if (values.key === undefined) keyPair = generateKeyPair()
  else if (isSecretKeyArgument(values.key)) ({ keyPair, created: keyCreated } = { keyPair: await resolveKeyArgument(values.key), created: false })
  else ({ keyPair, created: keyCreated } = await loadOrCreateKeyFile(values.key))
  const pubkey = keyPair.publicKey
  const root = namespacePath(dbPath, pubkey)
  if (await exists(root)) throw usage(`${dbPath} already holds context ${pubkey}`)

  const node = await startNode(dbPath)
  let output: string | undefined
  let stored: Policy
  try {
    ;({ policy: stored } = await node.peers.spawnPeer({ pubkey, ...(policy === undefined ? {} : { policy }) }))
    if (script !== undefined) {
      try {
        output = (await node.play(pubkey, { caller: pubkey, script })).output
      } catch (error) {
        await rm(root, { recursive: true, force: true })
        const code = isCirclesError(error) ? error.code : 'INTERNAL_ERROR'
        throw circlesError(code, `context create: the init script failed, nothing was created: ${(error as Error).message}`)
      }
    }
  } finally {
    await node.close()
  }
  io.stdout.write(
    `${JSON.stringify({
      public_key: pubkey,
      ...(values.key === undefined ? { secret_key: keyPair.secretKey } : isSecretKeyArgument(values.key) ? {} : { key_file: values.key, key_created: keyCreated }),
      db_path: dbPath,
      policy: stored,
      ...(output === undefined ? {} : { output }),
    })}\n`,
  )
  return 0
}

/** `circles context <subcommand>`: only `create` so far. */
export async function contextCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === 'create') return createContext(rest, io)
  if (sub === undefined || sub === '--help' || sub === '-h') throw new HelpRequested(commandHelp(CONTEXT_CREATE_COMMAND))
  throw circlesError('USAGE', `unknown command "context ${sub}"; run "circles context create --help"`)
}

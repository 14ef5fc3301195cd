import { parseArgs } from 'node:util'
import { circlesError } from '../errors/index.js'
import { generateKeyPair, writeKeyFile } from '../identity/index.js'

export interface CliIo {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
}

export const USAGE_TEXT = `Usage: circles <command> [options]

Commands:
  launch  [--config circles.json] [--db-path DIR] [--sandbox-processes N]
          [--sandbox-isolation process|thread] [--log-level LEVEL]
          [--admin-port N] [--admin-host HOST] [--no-admin]
          [--redis-url URL]... [--cluster-secret S] [--redis-prefix P]
          [--queue-allowance-ms N]
          [--connections-per-address N] [--nonces-per-minute N]
          [--failed-auth-per-minute N] [--plays-per-second N]
          [--limits-loopback | --no-load-limits]
          Serve every circle of the config file in this process. Logs go to
          stdout (JSON when piped); /metrics and /healthz on the admin port
          (default 127.0.0.1:9464). Load limits apply to every remote address
          but loopback unless --limits-loopback. With --redis-url, plays for
          contexts other nodes own are queued to them, and this node serves
          its own.
  worker  --redis-url URL [--circle-public-key KEY] [--db-path DIR]
          [--cluster-secret S] [--standby] [same log/admin/sandbox options]
          A node with no gateway: serves, from Redis, the context KEY (single-peer
          worker) or every context under DB_PATH (multi-peer worker). With
          --standby it waits for the database path's lock and takes over when
          its holder goes.
  keygen  [--out FILE]
          Print a new secp256k1 key pair as JSON (or write it to FILE, mode 0600).
  play    --url WS_URL [--key KEY_OR_FILE] (FILE | - | -e SCRIPT) [--timeout-ms N] [--json]
          [--repeat N [--concurrency C]]
          Authenticate (with a key) and run a script; print its output, logs to stderr.
          With --repeat: run it N times over C connections (one play in flight each) and
          print one line: req/s, p50 and p99 latency, errors by code.
  watch   --url WS_URL [--key KEY_OR_FILE] [--prefix P] [--topics T[,T…]] [--after EPOCH:SEQ]
          Subscribe to the circle's changes (under P) and events (topics starting with
          one of T); print one JSON line per notice, first a "subscribed" line with the
          position --after resumes from. Runs until Ctrl-C; a dropped connection resumes.
  help    Show this text.
`

/** Parse options of one subcommand; unknown or malformed options are a USAGE error naming them. */
export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>

type OptionValue<O> = O extends { type: 'string'; multiple: true } ? string[] : O extends { type: 'string' } ? string : boolean

export interface ParsedOptions<T extends OptionSpec> {
  readonly values: { [K in keyof T]?: OptionValue<T[K]> }
  readonly positionals: string[]
}

export function parseOptions<T extends OptionSpec>(
  command: string,
  argv: readonly string[],
  options: T,
  allowPositionals = false,
): ParsedOptions<T> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals }) as ParsedOptions<T>
  } catch (error) {
    throw circlesError('USAGE', `${command}: ${(error as Error).message}`)
  }
}

async function keygen(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions('keygen', argv, { out: { type: 'string' } })
  const pair = generateKeyPair()
  if (values.out !== undefined) {
    await writeKeyFile(values.out, pair)
    io.stdout.write(`${JSON.stringify({ public_key: pair.publicKey, key_file: values.out })}\n`)
  } else {
    io.stdout.write(`${JSON.stringify({ public_key: pair.publicKey, secret_key: pair.secretKey }, null, 2)}\n`)
  }
  return 0
}

/**
 * Run the `circles` command line. Resolves to the exit code (`undefined` for long-running
 * commands that end by signal); throws coded errors for bad usage.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | undefined> {
  const [command, ...rest] = argv
  switch (command) {
    case 'keygen':
      return keygen(rest, io)
    case 'launch': {
      const { launchCommand } = await import('./launch-command.js')
      return launchCommand(rest, io)
    }
    case 'play': {
      const { playCommand } = await import('./play-command.js')
      return playCommand(rest, io)
    }
    case 'watch': {
      const { watchCommand } = await import('./watch-command.js')
      return watchCommand(rest, io)
    }
    case 'worker': {
      const { workerCommand } = await import('./worker-command.js')
      return workerCommand(rest, io)
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(USAGE_TEXT)
      return 0
    default:
      throw circlesError('USAGE', `unknown command "${command}"; run "circles help"`)
  }
}

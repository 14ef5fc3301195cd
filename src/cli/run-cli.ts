import { parseArgs } from 'node:util'
import { circlesError } from '../errors/index.js'
import { generateKeyPair, writeKeyFile } from '../identity/index.js'

export interface CliIo {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
}

export const USAGE_TEXT = `Usage: circles <command> [options]

Commands:
  launch          serve the circles of a config file (circles.json) in this process
  worker          serve contexts from Redis, with no gateway (a node of a cluster)
  context create  create a context under a database path: its key, policy and init script
  keygen          make a secp256k1 key pair
  play            run a script in a circle (or load-test it with --repeat)
  watch           print a circle's changes and events as they happen, one JSON line each
  help            show this text

"circles <command> --help" (or -h) lists a command's options.
`

/** One option of a command: what parseArgs reads, and its line in the command's --help. */
export interface OptionDef {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  readonly multiple?: boolean
  /** The value's name in --help (string options). */
  readonly arg?: string
  readonly help: string
}

export type OptionSpec = Record<string, OptionDef>

/** A command as `--help` describes it. */
export interface CommandSpec<T extends OptionSpec = OptionSpec> {
  /** The words after `circles` (e.g. `context create`). */
  readonly name: string
  /** The synopsis after `circles <name>`. */
  readonly synopsis: string
  /** What the command does, a few lines. */
  readonly summary: string
  readonly options: T
}

type OptionValue<O> = O extends { type: 'string'; multiple: true } ? string[] : O extends { type: 'string' } ? string : boolean

export interface ParsedOptions<T extends OptionSpec> {
  readonly values: { [K in keyof T]?: OptionValue<T[K]> }
  readonly positionals: string[]
}

/** Thrown by {@link parseOptions} when the command line asks for help: runCli prints `text` and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super('help requested')
  }
}

const HELP_OPTION: OptionDef = { type: 'boolean', short: 'h', help: 'show this text' }
/** Where an option's description starts, and where its lines wrap (a terminal's width). */
const FLAG_WIDTH = 32
const LINE_WIDTH = 96

/** Words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  return [...lines, line]
}

/** A command's --help: its synopsis, what it does, and its options, one each. */
export function commandHelp(command: CommandSpec): string {
  const indent = ' '.repeat(FLAG_WIDTH)
  const lines = Object.entries({ ...command.options, help: HELP_OPTION }).map(([name, option]) => {
    const flag = `  ${option.short === undefined ? '' : `-${option.short}, `}--${name}${option.arg === undefined ? '' : ` ${option.arg}`}`
    const head = flag.length < FLAG_WIDTH ? flag.padEnd(FLAG_WIDTH) : `${flag}\n${indent}`
    return head + wrap(option.help, LINE_WIDTH - FLAG_WIDTH).join(`\n${indent}`)
  })
  return `Usage: circles ${command.name} ${command.synopsis}\n\n${command.summary}\n\nOptions:\n${lines.join('\n')}\n`
}

/**
 * Parse the options of one command. `--help` or `-h` anywhere throws {@link HelpRequested} with
 * the command's help; unknown or malformed options are a USAGE error naming them.
 */
export function parseOptions<T extends OptionSpec>(command: CommandSpec<T>, argv: readonly string[], allowPositionals = false): ParsedOptions<T> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, { type, short, multiple }] of Object.entries({ ...command.options, help: HELP_OPTION })) {
    config[name] = { type, ...(short === undefined ? {} : { short }), ...(multiple === undefined ? {} : { multiple }) }
  }
  // Asked for help, the rest of the line need not be right.
  const loose = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true })
  if (loose.values['help'] === true) throw new HelpRequested(commandHelp(command))
  try {
    return parseArgs({ args: [...argv], options: config, strict: true, allowPositionals }) as unknown as ParsedOptions<T>
  } catch (error) {
    throw circlesError('USAGE', `${command.name}: ${(error as Error).message}`)
  }
}

export const KEYGEN_COMMAND = {
  name: 'keygen',
  synopsis: '[--out FILE]',
  summary: 'Make a new secp256k1 key pair and print it as JSON.',
  options: { out: { type: 'string', arg: 'FILE', help: 'write the key pair to FILE (mode 0600) and print only its public key' } },
} as const satisfies CommandSpec

async function keygen(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(KEYGEN_COMMAND, argv)
  const pair = generateKeyPair()
  if (values.out !== undefined) {
    await writeKeyFile(values.out, pair)
    io.stdout.write(`${JSON.stringify({ public_key: pair.publicKey, key_file: values.out })}\n`)
  } else {
    io.stdout.write(`${JSON.stringify({ public_key: pair.publicKey, secret_key: pair.secretKey }, null, 2)}\n`)
  }
  return 0
}

async function dispatch(command: string | undefined, rest: readonly string[], io: CliIo): Promise<number | undefined> {
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
    case 'context': {
      const { contextCommand } = await import('./context-command.js')
      return contextCommand(rest, io)
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

/**
 * Run the `circles` command line. Resolves to the exit code (`undefined` for long-running
 * commands that end by signal); throws coded errors for bad usage.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | undefined> {
  const [command, ...rest] = argv
  try {
    return await dispatch(command, rest, io)
  } catch (error) {
    if (!(error instanceof HelpRequested)) throw error
    io.stdout.write(error.text)
    return 0
  }
}

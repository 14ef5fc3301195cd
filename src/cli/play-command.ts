import { readFile } from 'node:fs/promises'
import { CirclesClient, CirclesClientError, ConnectError, type PlayResult } from '../client/index.js'
import { parsePositiveInteger } from '../config/index.js'
import { circlesError } from '../errors/index.js'
import { keyPairFromText, resolveKeyArgument, type KeyPair } from '../identity/index.js'
import { parseOptions, type CliIo, type CommandSpec } from './run-cli.js'

/** The options of a command that talks to a circle: where, and as whom (`anonymously`: what it does without a key). */
export function circleOptions(anonymously: string) {
  return {
    url: { type: 'string', arg: 'WS_URL', help: "the circle's WebSocket URL (ws:// or wss://; /<public key> for another context)" },
    key: { type: 'string', arg: 'KEY_OR_FILE', help: `a key file, - for standard input, or a 64-hex secret key (shows in ps; prefer a file) (default: ${anonymously})` },
  } as const
}

export const PLAY_COMMAND = {
  name: 'play',
  synopsis: '--url WS_URL [--key KEY_OR_FILE] (FILE | - | -e SCRIPT) [options]',
  summary: [
    "Run a script in a circle: authenticate (with a key), play, print the script's output on",
    'stdout and its print() lines on stderr. Exit code 1 on an error answer (its code is printed).',
    'With --repeat: run it N times over C connections (one play in flight on each) and print',
    'one line: req/s, p50 and p99 latency, errors by code.',
  ].join('\n'),
  options: {
    ...circleOptions('play anonymously'),
    eval: { type: 'string', short: 'e', arg: 'SCRIPT', help: 'the script itself (else a FILE, or - for standard input)' },
    'timeout-ms': { type: 'string', arg: 'N', help: "the script's time limit on the node (it can only lower the circle's)" },
    json: { type: 'boolean', help: 'print the whole result (or the --repeat summary) as JSON' },
    repeat: { type: 'string', arg: 'N', help: 'run the script N times and print throughput and latency' },
    concurrency: { type: 'string', arg: 'C', help: 'with --repeat: C connections, one play in flight on each (default 1)' },
  },
} as const satisfies CommandSpec

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function positiveInteger(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined
  const n = parsePositiveInteger(value)
  if (n === undefined) throw circlesError('USAGE', `play: --${option} must be a positive integer`)
  return n
}

/** `--key`: a key file, - for standard input, or a 64-hex secret key; undefined without one. */
export async function keyOption(value: string | undefined): Promise<KeyPair | undefined> {
  if (value === undefined) return undefined
  return value === '-' ? keyPairFromText(await readStdin(), 'standard input') : resolveKeyArgument(value)
}

/**
 * One connected (and, with a key, authenticated) client; a failure is printed and answers exit
 * code 1. `reconnect`: the client comes back after a dropped connection (and authenticates again).
 */
export async function open(url: string, key: KeyPair | undefined, io: CliIo, reconnect = false): Promise<CirclesClient | number> {
  const withKey = key === undefined ? CirclesClient.builder(url) : CirclesClient.builder(url).withKey(key.secretKey)
  const client = (reconnect ? withKey.withReconnect({}) : withKey).build()
  try {
    await client.connect()
    if (key !== undefined) await client.authenticate()
    return client
  } catch (error) {
    await client.close()
    if (error instanceof ConnectError) io.stderr.write(`circles: ${error.message}\n`)
    else if (error instanceof CirclesClientError) io.stderr.write(`circles: ${error.code}: ${error.message}\n`)
    else throw error
    return 1
  }
}

/** The value at rank ⌈p·n⌉ of sorted samples (nearest-rank percentile). */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? 0
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

/**
 * `--repeat N --concurrency C`: C connections, each with one play in flight at a time, until N
 * plays have been answered; one summary line (or JSON) with throughput, latency and errors.
 */
async function loadTest(
  clients: readonly CirclesClient[],
  script: string,
  repeat: number,
  scriptTimeoutMs: number | undefined,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const latenciesMs: number[] = []
  const errors = new Map<string, number>()
  let issued = 0
  const started = performance.now()
  await Promise.all(
    clients.map(async (client) => {
      while (issued < repeat) {
        issued++
        const sent = performance.now()
        try {
          await client.play(script, scriptTimeoutMs === undefined ? {} : { scriptTimeoutMs })
        } catch (error) {
          if (!(error instanceof CirclesClientError)) throw error
          errors.set(error.code, (errors.get(error.code) ?? 0) + 1)
        }
        latenciesMs.push(performance.now() - sent)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  latenciesMs.sort((a, b) => a - b)
  const summary = {
    plays: repeat,
    connections: clients.length,
    seconds: round(seconds, 3),
    req_per_s: round(repeat / seconds, 1),
    p50_ms: round(percentile(latenciesMs, 0.5), 2),
    p99_ms: round(percentile(latenciesMs, 0.99), 2),
    errors: Object.fromEntries([...errors].sort(([a], [b]) => a.localeCompare(b))),
  }
  if (json) io.stdout.write(`${JSON.stringify(summary)}\n`)
  else {
    const errorText = errors.size === 0 ? 'none' : Object.entries(summary.errors).map(([code, n]) => `${code} ${n}`).join(', ')
    io.stdout.write(
      `${summary.plays} plays over ${summary.connections} connection(s) in ${summary.seconds} s: ` +
        `${summary.req_per_s} req/s, p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms, errors: ${errorText}\n`,
    )
  }
  return errors.size === 0 ? 0 : 1
}

function printResult(result: PlayResult, json: boolean, io: CliIo): void {
  if (json) io.stdout.write(`${JSON.stringify(result)}\n`)
  else {
    for (const line of result.logs) io.stderr.write(`${line}\n`)
    io.stdout.write(`${result.output}\n`)
  }
}

/**
 * `circles play --url WS_URL [--key FILE | - | HEX] (FILE | -e SCRIPT | -) [--timeout-ms N] [--json]
 * [--repeat N [--concurrency C]]`: authenticate (when a key is given) and run a script; print its
 * output (logs go to stderr), or with --repeat a throughput and latency summary.
 */
export async function playCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(PLAY_COMMAND, argv, true)
  if (values.url === undefined) throw circlesError('USAGE', 'play: --url WS_URL is required')
  if (!/^wss?:\/\//.test(values.url)) throw circlesError('USAGE', 'play: --url must start with ws:// or wss://')
  if ((values.eval === undefined) === (positionals.length === 0) || positionals.length > 1) {
    throw circlesError('USAGE', 'play: give exactly one script: a FILE, "-" for standard input, or -e SCRIPT')
  }
  const scriptTimeoutMs = positiveInteger(values['timeout-ms'], 'timeout-ms')
  const repeat = positiveInteger(values.repeat, 'repeat') ?? 1
  const concurrency = positiveInteger(values.concurrency, 'concurrency') ?? 1
  if (concurrency > repeat) throw circlesError('USAGE', 'play: --concurrency must not exceed --repeat (one play in flight per connection)')
  const source = positionals[0]
  // `--key -`: the key on standard input, where ps does not show it (a hex argument it does).
  if (values.key === '-' && source === '-') throw circlesError('USAGE', 'play: --key - and a script from standard input cannot both read standard input')
  let script: string
  if (values.eval !== undefined) script = values.eval
  else if (source === '-') script = await readStdin()
  else {
    try {
      script = await readFile(source!, 'utf8')
    } catch (error) {
      throw circlesError('USAGE', `play: cannot read ${source} (${(error as NodeJS.ErrnoException).code})`)
    }
  }
  const key = await keyOption(values.key)
  const opened = await Promise.all(Array.from({ length: concurrency }, () => open(values.url!, key, io)))
  const clients = opened.filter((c): c is CirclesClient => typeof c !== 'number')
  try {
    if (clients.length < concurrency) return 1
    if (values.repeat !== undefined) return await loadTest(clients, script, repeat, scriptTimeoutMs, values.json === true, io)
    try {
      printResult(await clients[0]!.play(script, scriptTimeoutMs === undefined ? {} : { scriptTimeoutMs }), values.json === true, io)
      return 0
    } catch (error) {
      if (!(error instanceof CirclesClientError)) throw error
      const logs = Array.isArray(error.data['logs']) ? (error.data['logs'] as string[]) : []
      for (const line of logs) io.stderr.write(`${line}\n`)
      io.stderr.write(`circles: ${error.code}: ${error.message}\n`)
      return 1
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
  }
}

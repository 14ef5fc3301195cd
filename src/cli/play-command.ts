import { readFile } from 'node:fs/promises'
import { CirclesClient, ConnectionClosedError, RpcError } from '../client/index.js'
import { circlesError } from '../errors/index.js'
import { resolveKeyArgument } from '../identity/index.js'
import { parseOptions, type CliIo } from './run-cli.js'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * `circles play --url WS_URL [--key KEY_OR_FILE] (FILE | -e SCRIPT | -) [--timeout-ms N] [--json]`:
 * authenticate (when a key is given) and run a script; print its output (logs go to stderr).
 */
export async function playCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(
    'play',
    argv,
    {
      url: { type: 'string' },
      key: { type: 'string' },
      eval: { type: 'string', short: 'e' },
      'timeout-ms': { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  )
  if (values.url === undefined) throw circlesError('USAGE', 'play: --url WS_URL is required')
  if (!/^wss?:\/\//.test(values.url)) throw circlesError('USAGE', 'play: --url must start with ws:// or wss://')
  if ((values.eval === undefined) === (positionals.length === 0) || positionals.length > 1) {
    throw circlesError('USAGE', 'play: give exactly one script: a FILE, "-" for standard input, or -e SCRIPT')
  }
  let timeoutMs: number | undefined
  if (values['timeout-ms'] !== undefined) {
    timeoutMs = Number(values['timeout-ms'])
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw circlesError('USAGE', 'play: --timeout-ms must be a positive integer')
  }
  const source = positionals[0]
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
  const key = values.key === undefined ? undefined : await resolveKeyArgument(values.key)
  let client: CirclesClient
  try {
    client = await CirclesClient.connect(values.url)
  } catch (error) {
    io.stderr.write(`circles: cannot connect to ${values.url}: ${(error as Error).message}\n`)
    return 1
  }
  try {
    if (key !== undefined) await client.authenticate(key)
    const result = await client.play(script, timeoutMs === undefined ? {} : { timeoutMs })
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`)
    else {
      for (const line of result.logs) io.stderr.write(`${line}\n`)
      io.stdout.write(`${result.output}\n`)
    }
    return 0
  } catch (error) {
    if (error instanceof RpcError) {
      const logs = Array.isArray(error.data['logs']) ? (error.data['logs'] as string[]) : []
      for (const line of logs) io.stderr.write(`${line}\n`)
      io.stderr.write(`circles: ${error.dataCode}: ${error.message}\n`)
      return 1
    }
    if (error instanceof ConnectionClosedError) {
      io.stderr.write(`circles: ${error.message}\n`)
      return 1
    }
    throw error
  } finally {
    client.close()
  }
}

import { CirclesClientError, type LiveNotice, type SubscribeFilter } from '../client/index.js'
import { circlesError } from '../errors/index.js'
import { circleOptions, keyOption, open } from './play-command.js'
import { parseOptions, type CliIo, type CommandSpec } from './run-cli.js'

export const WATCH_COMMAND = {
  name: 'watch',
  synopsis: '--url WS_URL [--key KEY_OR_FILE] [--prefix P] [--topics T[,T…]] [--after EPOCH:SEQ]',
  summary: [
    "Subscribe to a circle's changes (under P) and events (topics starting with one of T) and print",
    'one JSON line per notice, first a "subscribed" line with the position --after resumes from.',
    'Runs until Ctrl-C; a dropped connection resumes. Exit code 1 when the subscription is refused or',
    'ended, or the connection is lost for good.',
  ].join('\n'),
  options: {
    ...circleOptions('watch anonymously'),
    prefix: { type: 'string', arg: 'P', help: 'changes of documents whose names start with P' },
    topics: { type: 'string', arg: 'T[,T…]', help: 'events whose topics start with one of these (comma-separated)' },
    after: { type: 'string', arg: 'EPOCH:SEQ', help: 'resume from a position a line of circles watch printed (what was missed since comes first)' },
  },
} as const satisfies CommandSpec

/** `--after EPOCH:SEQ`, as a `subscribed` line or a notice printed it. */
function parseAfter(value: string): { epoch: string; seq: number } {
  const match = /^([0-9a-f]{1,64}):(\d{1,15})$/.exec(value)
  if (match === null) throw circlesError('USAGE', 'watch: --after must be EPOCH:SEQ, as a line of circles watch printed them')
  return { epoch: match[1]!, seq: Number(match[2]) }
}

/** One output line per notice: its members as the client hands them, the error as its code and message. */
function line(notice: LiveNotice): Record<string, unknown> {
  if (notice.type === 'ended') return { type: 'ended', code: notice.error.code, message: notice.error.message }
  if (notice.type === 'resync') return { type: 'resync', epoch: notice.epoch, seq: notice.seq }
  return notice
}

/**
 * `circles watch --url WS_URL [--key KEY_OR_FILE] [--prefix P] [--topics T,…] [--after EPOCH:SEQ]`:
 * subscribe to the circle's changes and events and print one JSON line per notice, first a
 * `subscribed` line with the position to resume from, until SIGINT/SIGTERM (exit 0). A dropped
 * connection is resumed; a refusal, an ended subscription or a connection lost for good exit 1.
 */
export async function watchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(WATCH_COMMAND, argv)
  if (values.url === undefined) throw circlesError('USAGE', 'watch: --url WS_URL is required')
  if (!/^wss?:\/\//.test(values.url)) throw circlesError('USAGE', 'watch: --url must start with ws:// or wss://')
  const topics = values.topics?.split(',')
  if (topics !== undefined && topics.some((topic) => topic === '')) throw circlesError('USAGE', 'watch: --topics takes a comma-separated list of topic prefixes')
  const filter: SubscribeFilter = {
    ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
    ...(topics === undefined ? {} : { topics }),
    ...(values.after === undefined ? {} : { after: parseAfter(values.after) }),
  }
  const key = await keyOption(values.key)
  const client = await open(values.url, key, io, true)
  if (typeof client === 'number') return client
  const print = (value: Record<string, unknown>) => io.stdout.write(`${JSON.stringify(value)}\n`)
  return new Promise<number>((resolve) => {
    let finished = false
    const finish = (code: number) => {
      if (finished) return
      finished = true
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
      void client.close().then(() => resolve(code))
    }
    const interrupted = () => finish(0)
    process.on('SIGINT', interrupted)
    process.on('SIGTERM', interrupted)
    client.onStateChange((state) => {
      if (state === 'closed' && !finished) {
        io.stderr.write('circles: the connection was lost and could not be resumed\n')
        finish(1)
      }
    })
    const show = (notice: LiveNotice) => {
      print(line(notice))
      if (notice.type === 'ended') finish(1)
    }
    // What a resume replays comes with the answer: printed after the `subscribed` line.
    let early: LiveNotice[] | undefined = []
    client
      .subscribe(filter, (notice) => (early === undefined ? show(notice) : early.push(notice)))
      .then(
        (stop) => {
          print({ type: 'subscribed', epoch: stop.epoch, seq: stop.seq })
          const held = early ?? []
          early = undefined
          for (const notice of held) show(notice)
        },
        (error: unknown) => {
          io.stderr.write(error instanceof CirclesClientError ? `circles: ${error.code}: ${error.message}\n` : `circles: ${String(error)}\n`)
          finish(1)
        },
      )
  })
}

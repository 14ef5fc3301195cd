import { Writable } from 'node:stream'
import pino from 'pino'
import { REDACTED_PATHS, type Logger } from '../../src/log/index.js'

export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [key: string]: unknown
}

export interface LogCapture {
  readonly logger: Logger
  readonly lines: LogLine[]
  /** The raw text written so far (for greps). */
  text(): string
  /**
   * Resolves with the first line that matches, among those written from line index `from` on
   * (default 0: lines already written count too) and those to come.
   */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>
  /** How many lines were written so far: pass it as `from` to wait for a line written later. */
  mark(): number
}

/** A node logger whose JSON lines the test can read and wait on (the node's own events). */
export function captureLog(level = 'debug'): LogCapture {
  const lines: LogLine[] = []
  let raw = ''
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString()
      raw += text
      for (const part of text.split('\n')) {
        if (part === '') continue
        const line = JSON.parse(part) as LogLine
        lines.push(line)
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.match(line)) waiters.splice(i, 1)[0]!.resolve(line)
        }
      }
      callback()
    },
  })
  const logger = pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream)
  return {
    logger,
    lines,
    text: () => raw,
    mark: () => lines.length,
    waitFor(match, timeoutMs = 15_000, from = 0) {
      const found = lines.slice(from).find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms`)), timeoutMs)
        waiters.push({
          match,
          resolve: (line) => {
            clearTimeout(timer)
            resolve(line)
          },
        })
      })
    },
  }
}

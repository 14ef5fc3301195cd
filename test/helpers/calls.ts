import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { authenticate, openSocket, type RawSocket } from './raw-socket.js'

/** Policies for contexts that take part in workflows: any authenticated caller may run, write and call out. */
export const OPEN_CALLS = { run: 'authenticated', write: 'authenticated', call: 'authenticated' } as const

/** A play's answer as a test reads it. */
export type Answer =
  | { readonly ok: true; readonly value: unknown; readonly output: string; readonly logs: string[]; readonly timings: Record<string, number> }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly logs: string[]; readonly timings: Record<string, number> }

/**
 * An authenticated client of a node: plays in any context it hosts, one socket per context
 * (opened on first use, closed at teardown).
 */
export function clientOf(t: { teardown(fn: () => unknown): void }, base: string, pair: KeyPair = generateKeyPair()) {
  const sockets = new Map<string, Promise<RawSocket>>()
  t.teardown(async () => {
    for (const socket of sockets.values()) (await socket).close()
  })
  const socketFor = (context: string): Promise<RawSocket> => {
    let socket = sockets.get(context)
    if (socket === undefined) {
      socket = openSocket(`${base}${context}`).then(async (s) => {
        await authenticate(s, pair)
        return s
      })
      sockets.set(context, socket)
    }
    return socket
  }
  let id = 0
  return {
    key: pair.publicKey,
    /** Play `script` in `context`; answers arrive in order on its socket. */
    async play(context: string, script: string, params: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<Answer> {
      const socket = await socketFor(context)
      const answer = await socket.call('play', { script, ...params }, ++id, timeoutMs)
      return decodeAnswer(answer)
    },
    /** Send several plays on one socket at once; resolves with their answers in order. */
    async playMany(context: string, scripts: readonly string[], timeoutMs = 120_000): Promise<Answer[]> {
      const socket = await socketFor(context)
      const first = id + 1
      for (const script of scripts) socket.send({ jsonrpc: '2.0', id: ++id, method: 'play', params: { script } })
      const answers = new Map<number, Answer>()
      while (answers.size < scripts.length) {
        const answer = await socket.next(timeoutMs)
        answers.set(answer.id as number, decodeAnswer(answer))
      }
      return scripts.map((_, i) => answers.get(first + i)!)
    },
  }
}

function decodeAnswer(answer: any): Answer {
  if (answer.result !== undefined) {
    const { result } = answer
    return { ok: true, value: 'result' in result ? result.result : result.output, output: result.output, logs: result.logs, timings: result.timings }
  }
  const { data } = answer.error
  return { ok: false, code: data.code, message: answer.error.message, logs: data.logs, timings: data.timings }
}

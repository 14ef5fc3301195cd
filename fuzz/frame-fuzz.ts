import { WebSocket } from 'ws'
import { generateKeyPair, signPersonalMessage, type KeyPair } from '../src/identity/index.js'
import { DOCUMENTED_CLOSE_CODES, messageProblem } from './answer-check.js'
import { idsOf, nextFrame, type FrameContext } from './frame-mutator.js'
import { Random } from './random.js'

export interface FrameFuzzOptions {
  /** The WebSocket URL of a circle that admits anonymous callers. */
  readonly url: string
  readonly frames: number
  readonly seed: number
  /** Sockets sending at once (default 4). */
  readonly sockets?: number
  /** Called now and then with the frames sent so far. */
  readonly onProgress?: (sent: number) => void
}

export interface FuzzReport {
  readonly seed: number
  readonly frames: number
  readonly messages: number
  /** Sockets the node closed, by close code. */
  readonly closes: Record<string, number>
  /** `data.code` of the error answers, and `ok` for results. */
  readonly outcomes: Record<string, number>
  /** Everything that was not well-formed (empty when the node behaved). */
  readonly problems: string[]
}

/** A ping that the gateway answers at once and that changes nothing: METHOD_NOT_FOUND. */
const PING = (n: number) => `{"jsonrpc":"2.0","id":"~ping${n}","method":"~ping"}`
const MAX_PROBLEMS = 20
/** Frames sent between two pings: enough to keep the node busy, few enough to pace the sender. */
const FRAMES_PER_PING = 4

interface Conn {
  readonly ws: WebSocket
  readonly opened: Promise<void>
  /** Resolves with the close code. */
  readonly closed: Promise<number>
  waiting: { id: string; resolve: () => void } | undefined
}

/**
 * Send `frames` fuzzed frames to a node over real sockets and check every message it sends back:
 * valid JSON-RPC 2.0, ids echoed (only ids that were sent), error codes from the documented set,
 * sockets closed only with documented close codes. After every few frames a ping (answered at
 * once) paces the sender; a socket the node closed is replaced. Now and then a socket authenticates
 * for real, so that authenticated paths are fuzzed too.
 */
export async function fuzzFrames(options: FrameFuzzOptions): Promise<FuzzReport> {
  const random = new Random(options.seed)
  const keys: KeyPair[] = [generateKeyPair(), generateKeyPair()]
  const ctx: FrameContext = { pubkeys: [...keys.map((k) => k.publicKey), `04${'1'.repeat(128)}`, '02' + 'f'.repeat(64)] }
  const ids = new Set<string>(['null'])
  const closes: Record<string, number> = {}
  const outcomes: Record<string, number> = {}
  const problems: string[] = []
  let messages = 0
  let sent = 0
  let pings = 0
  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text)
  }

  const connect = (): Conn => {
    const ws = new WebSocket(options.url, { maxPayload: 64 * 1024 * 1024 })
    const conn: Conn = {
      ws,
      opened: new Promise((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      }),
      closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
      waiting: undefined,
    }
    ws.on('error', () => {})
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      messages++
      const text = data.toString()
      if (isBinary) problem('a binary message from the node')
      const wrong = messageProblem(text, ids)
      if (wrong !== undefined) problem(`${wrong} (message: ${text.slice(0, 160)})`)
      try {
        const value = JSON.parse(text) as unknown
        for (const r of (Array.isArray(value) ? value : [value]) as { id?: unknown; error?: { data?: { code?: string } } }[]) {
          const key = r.error?.data?.code ?? 'ok'
          outcomes[key] = (outcomes[key] ?? 0) + 1
          if (conn.waiting !== undefined && r.id === conn.waiting.id) {
            const { resolve } = conn.waiting
            conn.waiting = undefined
            resolve()
          }
        }
      } catch {
        // Reported above.
      }
    })
    return conn
  }

  /** A real fetch_nonce + authenticate on a fresh socket (the circle admits anyone). */
  const authenticated = async (): Promise<Conn> => {
    const conn = connect()
    await conn.opened
    const key = random.pick(keys)
    const answer = (id: string) =>
      new Promise<Record<string, any>>((resolve) => {
        const listener = (data: Buffer) => {
          const value = JSON.parse(data.toString()) as Record<string, any>
          if (value['id'] === id) {
            conn.ws.off('message', listener)
            resolve(value)
          }
        }
        conn.ws.on('message', listener)
      })
    ids.add('"~n"').add('"~a"')
    const nonce = answer('~n')
    conn.ws.send(JSON.stringify({ jsonrpc: '2.0', id: '~n', method: 'fetch_nonce', params: { pubkey: key.publicKey } }))
    const first = await Promise.race([nonce, conn.closed.then(() => undefined)])
    const value = first?.['result']?.nonce as string | undefined
    if (value === undefined) return conn
    const auth = answer('~a')
    conn.ws.send(JSON.stringify({ jsonrpc: '2.0', id: '~a', method: 'authenticate', params: { pubkey: key.publicKey, signature: signPersonalMessage(value, key.secretKey) } }))
    await Promise.race([auth, conn.closed])
    return conn
  }

  const worker = async (): Promise<void> => {
    let conn = connect()
    await conn.opened
    while (sent < options.frames) {
      if (conn.ws.readyState !== WebSocket.OPEN) {
        const code = await conn.closed
        closes[code] = (closes[code] ?? 0) + 1
        if (!DOCUMENTED_CLOSE_CODES.has(code)) problem(`the node closed a socket with ${code}`)
        conn = random.chance(0.2) ? await authenticated() : connect()
        await conn.opened
      }
      for (let i = 0; i < FRAMES_PER_PING && sent < options.frames && conn.ws.readyState === WebSocket.OPEN; i++) {
        const frame = nextFrame(random, ctx)
        for (const id of idsOf(frame)) ids.add(id)
        sent++
        if (sent % 1000 === 0) options.onProgress?.(sent)
        if (frame.type === 'text') conn.ws.send(frame.text)
        else conn.ws.send(frame.bytes, { binary: frame.type === 'binary' })
      }
      const ping = `~ping${pings++}`
      ids.add(JSON.stringify(ping))
      const current = conn
      const answered = new Promise<void>((resolve) => (current.waiting = { id: ping, resolve }))
      conn.ws.send(PING(pings - 1))
      await Promise.race([answered, conn.closed])
    }
    conn.ws.close()
    await conn.closed
  }

  await Promise.all(Array.from({ length: options.sockets ?? 4 }, () => worker()))
  return { seed: options.seed, frames: sent, messages, closes, outcomes, problems }
}

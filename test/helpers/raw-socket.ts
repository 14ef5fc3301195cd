import { WebSocket } from 'ws'
import { signPersonalMessage, type KeyPair } from '../../src/identity/index.js'

/** A raw WebSocket with a message queue: tests see exactly what the node sends. */
export interface RawSocket {
  readonly ws: WebSocket
  /** The next text message, parsed (rejects if the socket closes first). */
  next(timeoutMs?: number): Promise<any>
  /** The next text message as sent (for byte counts). */
  nextText(timeoutMs?: number): Promise<string>
  /** Send text (or a value, JSON-encoded). */
  send(value: unknown): void
  /** Send a request and wait for the next message (5 s unless told). */
  call(method: string, params: unknown, id?: number | string, timeoutMs?: number): Promise<any>
  /** Send several values in one write (one TCP segment when small): the node reads them together. */
  sendAll(values: readonly unknown[]): void
  /** Stop reading from the TCP socket (the node's writes pile up), or read again. */
  pauseReading(): void
  resumeReading(): void
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>
  close(): void
}

export interface SocketOptions {
  /** The local (source) address, e.g. 127.0.0.2: loopback limits count per address. */
  readonly localAddress?: string
}

/** The TCP socket under a ws client. */
function tcp(ws: WebSocket): import('node:net').Socket {
  return (ws as unknown as { _socket: import('node:net').Socket })._socket
}

export async function openSocket(url: string, options: SocketOptions = {}): Promise<RawSocket> {
  const ws = new WebSocket(url, options.localAddress === undefined ? {} : { localAddress: options.localAddress })
  const queue: string[] = []
  const waiting: { resolve: (text: string) => void; reject: (error: Error) => void }[] = []
  ws.on('message', (data) => {
    const text = data.toString()
    const w = waiting.shift()
    if (w) w.resolve(text)
    else queue.push(text)
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      // No message comes after the close: whoever still waits for one is told now.
      for (const w of waiting.splice(0)) w.reject(new Error(`the socket closed (${code}) before the message came`))
      resolve({ code, reason: reason.toString() })
    }),
  )
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  let nextId = 1
  const socket: RawSocket = {
    ws,
    closed,
    async next(timeoutMs = 20_000) {
      return JSON.parse(await socket.nextText(timeoutMs))
    },
    nextText(timeoutMs = 20_000) {
      const text = queue.shift()
      if (text !== undefined) return Promise.resolve(text)
      if (ws.readyState === ws.CLOSED) return Promise.reject(new Error('the socket is closed'))
      return new Promise((resolve, reject) => {
        const waiter = {
          resolve: (t: string) => {
            clearTimeout(timer)
            resolve(t)
          },
          reject: (error: Error) => {
            clearTimeout(timer)
            reject(error)
          },
        }
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(waiter), 1)
          reject(new Error('no message within timeout'))
        }, timeoutMs)
        waiting.push(waiter)
      })
    },
    send(value) {
      ws.send(typeof value === 'string' ? value : JSON.stringify(value))
    },
    sendAll(values) {
      const raw = tcp(ws)
      raw.cork()
      for (const value of values) socket.send(value)
      raw.uncork()
    },
    pauseReading() {
      tcp(ws).pause()
    },
    resumeReading() {
      tcp(ws).resume()
    },
    call(method, params, id = nextId++, timeoutMs) {
      socket.send({ jsonrpc: '2.0', id, method, params })
      return socket.next(timeoutMs)
    },
    close() {
      ws.close()
    },
  }
  return socket
}

/** fetch_nonce + personal_sign + authenticate on a raw socket; returns the authenticate answer. */
export async function authenticate(socket: RawSocket, pair: KeyPair): Promise<any> {
  const nonce = await socket.call('fetch_nonce', { pubkey: pair.publicKey })
  return socket.call('authenticate', { pubkey: pair.publicKey, signature: signPersonalMessage(nonce.result.nonce, pair.secretKey) })
}

/** One JSON-RPC call on a plain `ws` socket: send it, resolve with the answer carrying its id. */
export function rpcCall(ws: WebSocket, id: number, method: string, params: unknown): Promise<any> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      const answer = JSON.parse(data.toString())
      if (answer.id !== id) return
      ws.off('message', onMessage)
      resolve(answer)
    }
    ws.on('message', onMessage)
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
  })
}

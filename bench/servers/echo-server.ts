/**
 * Ceiling A: a bare `ws` JSON-RPC echo server — parse each frame, answer `{ result: params }`.
 * No auth, no sandbox: the cost of WebSocket + JSON alone on this machine.
 * Prints `{"url": …}` on stdout once listening.
 */
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const request = JSON.parse(data.toString()) as { id: unknown; params: unknown }
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { output: 'echo', result: request.params } }))
  })
})
wss.on('listening', () => {
  const address = wss.address() as { port: number }
  process.stdout.write(`${JSON.stringify({ url: `ws://127.0.0.1:${address.port}/`, pid: process.pid })}\n`)
})
process.on('SIGTERM', () => process.exit(0))

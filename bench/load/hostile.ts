/**
 * Hostile neighbours for the benchmark: what each attack of the budgets' design costs a
 * well-behaved client of the same node. Each runs until SIGTERM and then reports what it did.
 *
 *   unread  N sockets (one per address of `addresses`) that each ask for 16 answers of ~1 MB at
 *           once and never read them (nor notice being cut)
 *   junk    one socket sending 1 MiB `[[[…]]]` frames as fast as the node takes them, opening a
 *           new socket whenever the node closes one
 *   bomb    one socket sending memory bombs to the circle, one at a time, waiting out the
 *           quarantine's retry_after_ms when refused
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Socket } from 'node:net'
import { WebSocket } from 'ws'
import { BOMB } from '../soak/load-mix.js'

export const HOSTILE_MODES = ['unread', 'junk', 'bomb'] as const
export type HostileMode = (typeof HOSTILE_MODES)[number]

export interface HostileConfig {
  readonly mode: HostileMode
  readonly url: string
  readonly connections: number
  readonly addresses?: readonly string[]
}

const ANSWERS_PER_SOCKET = 16
const BIG_ANSWER = '"x".repeat(1000000)'
const JUNK = '['.repeat(524_288) + ']'.repeat(524_288)

let running = true
const counts: Record<string, number> = {}
const count = (what: string, n = 1) => (counts[what] = (counts[what] ?? 0) + n)

function open(url: string, localAddress: string | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress === undefined ? {} : { localAddress }) })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

const rpc = (id: number, script: string) => JSON.stringify({ jsonrpc: '2.0', id, method: 'play', params: { script } })

async function unread(url: string, address: string | undefined): Promise<void> {
  let ws: WebSocket
  try {
    ws = await open(url, address)
  } catch {
    count('refused_upgrades')
    return
  }
  const tcp = (ws as unknown as { _socket: Socket })._socket
  tcp.pause()
  tcp.cork()
  for (let i = 0; i < ANSWERS_PER_SOCKET; i++) ws.send(rpc(i, BIG_ANSWER))
  tcp.uncork()
  count('sockets')
  count('big_answers_asked', ANSWERS_PER_SOCKET)
  while (running) await sleep(100)
  ws.terminate()
}

async function junk(url: string, address: string | undefined): Promise<void> {
  while (running) {
    let ws: WebSocket
    try {
      ws = await open(url, address)
    } catch {
      count('refused_upgrades')
      await sleep(100)
      continue
    }
    count('sockets')
    let open_ = true
    ws.on('close', () => (open_ = false))
    ws.on('error', () => {})
    while (running && open_) {
      // The next frame once the last one has left this process: as fast as the node reads.
      const sent = await new Promise<boolean>((resolve) => ws.send(JUNK, (error) => resolve(error === undefined || error === null)))
      if (sent) count('junk_frames')
      else await sleep(10)
    }
    ws.terminate()
  }
}

async function bomb(url: string, address: string | undefined): Promise<void> {
  let id = 0
  while (running) {
    let ws: WebSocket
    try {
      ws = await open(url, address)
    } catch {
      count('refused_upgrades')
      await sleep(100)
      continue
    }
    while (running && ws.readyState === ws.OPEN) {
      const answer = await new Promise<string | undefined>((resolve) => {
        ws.once('message', (data: Buffer) => resolve(data.toString()))
        ws.once('close', () => resolve(undefined))
        ws.send(rpc(++id, BOMB))
      })
      if (answer === undefined) break
      const code = /"code":"([A-Z_]+)"/.exec(answer)?.[1] ?? 'ok'
      count(code)
      const retry = /"retry_after_ms":(\d+)/.exec(answer)?.[1]
      if (code === 'RATE_LIMITED' && retry !== undefined) await sleep(Number(retry))
    }
    ws.terminate()
  }
}

/** Run the attack until SIGTERM; resolves with what it did. */
export async function runHostile(config: HostileConfig): Promise<{ mode: HostileMode; connections: number; counts: Record<string, number> }> {
  const attack = { unread, junk, bomb }[config.mode]
  const addressOf = (i: number) => (config.addresses === undefined ? undefined : config.addresses[i % config.addresses.length])
  const loops = Array.from({ length: config.connections }, (_, i) => attack(config.url, addressOf(i)))
  // The bench waits for this line before it measures.
  process.stdout.write(`${JSON.stringify({ started: config.mode })}\n`)
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()))
  running = false
  await Promise.race([Promise.all(loops), sleep(1_000)])
  return { mode: config.mode, connections: config.connections, counts }
}

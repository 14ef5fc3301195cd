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

/** Open a socket; undefined (and counted) when the node refuses the upgrade. */
async function tryOpen(url: string, address: string | undefined): Promise<WebSocket | undefined> {
  try {
    return await open(url, address)
  } catch {
    count('refused_upgrades')
    return undefined
  }
}

/** Run `session` on a socket, and again on a new one whenever it ends, until stopped. */
async function reconnecting(url: string, address: string | undefined, session: (ws: WebSocket) => Promise<void>): Promise<void> {
  while (running) {
    const ws = await tryOpen(url, address)
    if (ws === undefined) {
      await sleep(100)
      continue
    }
    count('sockets')
    await session(ws)
    ws.terminate()
  }
}

async function unread(url: string, address: string | undefined): Promise<void> {
  const ws = await tryOpen(url, address)
  if (ws === undefined) return
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

function junk(url: string, address: string | undefined): Promise<void> {
  return reconnecting(url, address, async (ws) => {
    let isOpen = true
    ws.on('close', () => (isOpen = false))
    ws.on('error', () => {})
    while (running && isOpen) {
      // The next frame once the last one has left this process: as fast as the node reads.
      const sent = await new Promise<boolean>((resolve) => ws.send(JUNK, (error) => resolve(error === undefined || error === null)))
      if (sent) count('junk_frames')
      else await sleep(10)
    }
  })
}

function bomb(url: string, address: string | undefined): Promise<void> {
  let id = 0
  return reconnecting(url, address, async (ws) => {
    while (running && ws.readyState === ws.OPEN) {
      const answer = await new Promise<string | undefined>((resolve) => {
        ws.once('message', (data: Buffer) => resolve(data.toString()))
        ws.once('close', () => resolve(undefined))
        ws.send(rpc(++id, BOMB))
      })
      if (answer === undefined) return
      const code = /"code":"([A-Z_]+)"/.exec(answer)?.[1] ?? 'ok'
      count(code)
      const retry = /"retry_after_ms":(\d+)/.exec(answer)?.[1]
      if (code === 'RATE_LIMITED' && retry !== undefined) await sleep(Number(retry))
    }
  })
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

import { setTimeout as sleep } from 'node:timers/promises'
import { CirclesClient, ConnectionClosedError, RpcError } from '../../src/client/index.js'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'

/** The circles of a soak node (WebSocket URLs). */
export interface SoakCircles {
  /** Any authenticated caller runs and writes; good clients, reconnects and hostile scripts. */
  readonly main: string
  /** Small quotas: writers fill it up and delete. */
  readonly quota: string
  /** A tiny heap: a Map growing in one step aborts V8 and kills the sandbox host. */
  readonly bomb: string
}

/** How hard each part of the mix pushes (pauses between one answer and the next request). */
export interface LoadMixOptions {
  readonly goodClients: number
  readonly goodPauseMs: number
  readonly reconnectPauseMs: number
  readonly floodLoops: number
  readonly floodPauseMs: number
  readonly hostilePauseMs: number
  readonly writerPauseMs: number
  /** One host-killing bomb this often. */
  readonly bombEveryMs: number
}

export const DEFAULT_MIX: LoadMixOptions = {
  goodClients: 4,
  goodPauseMs: 20,
  reconnectPauseMs: 100,
  floodLoops: 2,
  floodPauseMs: 50,
  hostilePauseMs: 200,
  writerPauseMs: 50,
  bombEveryMs: 30_000,
}

export type LoadClass = 'good' | 'reconnect' | 'hostile' | 'writer' | 'flood' | 'bomb'

/** What each class may be answered; anything else is counted as unexpected. */
const EXPECTED: Record<LoadClass, readonly string[]> = {
  good: ['ok'],
  reconnect: ['ok'],
  hostile: ['SCRIPT_TIMEOUT', 'SCRIPT_MEMORY', 'SCRIPT_ERROR', 'OUTPUT_TOO_LARGE'],
  writer: ['ok', 'QUOTA_EXCEEDED'],
  flood: ['INVALID_CREDENTIALS'],
  // A bomb crashes its host; the circle is then quarantined for a while (RATE_LIMITED). A
  // bomb may also hit its time limit first on a busy machine.
  bomb: ['WORKER_CRASHED', 'RATE_LIMITED', 'SCRIPT_MEMORY', 'SCRIPT_TIMEOUT'],
}

const HOSTILE_SCRIPTS: readonly { script: string; timeoutMs?: number }[] = [
  { script: 'while (true) {}', timeoutMs: 50 },
  { script: 'let s = "x"; while (true) s += s' },
  { script: 'const a = []; while (true) a.push(new Array(100000).fill(1))' },
  { script: 'throw new Error("hostile")' },
  { script: '"x".repeat(2000000)' },
]

/** Grows a Map until V8 aborts the sandbox host (with a small heap limit, at once). */
export const BOMB = 'const m = new Map(); for (let i = 0; ; i++) m.set(i, { i })'

function codeOf(error: unknown): string {
  if (error instanceof RpcError) return error.code
  if (error instanceof ConnectionClosedError) return `CLOSED_${error.closeCode}`
  return `CLIENT_${(error as Error).message.slice(0, 40)}`
}

/**
 * The soak's mixed load against a running node: good clients in a loop of reads and writes,
 * clients that reconnect for every play, hostile scripts, writers against small quotas, floods
 * of authentications with bad signatures, and now and then a script that kills its sandbox host.
 * Every answer is counted by class and code.
 */
export class LoadMix {
  /** Answers by class, then by code (`ok` or the error's data.code). */
  readonly answers = new Map<LoadClass, Map<string, number>>()
  private running = false
  private readonly loops: Promise<void>[] = []

  constructor(
    private readonly circles: SoakCircles,
    private readonly options: LoadMixOptions = DEFAULT_MIX,
  ) {}

  start(): void {
    this.running = true
    const o = this.options
    for (let i = 0; i < o.goodClients; i++) this.loops.push(this.good(i))
    this.loops.push(this.reconnect(), this.hostile(), this.writer(), this.bombs())
    for (let i = 0; i < o.floodLoops; i++) this.loops.push(this.flood())
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.allSettled(this.loops)
  }

  /** Answers of a class that it should never get. */
  unexpected(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [cls, codes] of this.answers) {
      for (const [code, n] of codes) if (!EXPECTED[cls].includes(code)) out[`${cls} ${code}`] = n
    }
    return out
  }

  count(cls: LoadClass, code: string): number {
    return this.answers.get(cls)?.get(code) ?? 0
  }

  private record(cls: LoadClass, code: string): void {
    let codes = this.answers.get(cls)
    if (codes === undefined) this.answers.set(cls, (codes = new Map()))
    codes.set(code, (codes.get(code) ?? 0) + 1)
  }

  /** Run `op` and record its answer; a closed connection is recorded and the client dropped. */
  private async attempt(cls: LoadClass, op: () => Promise<unknown>): Promise<boolean> {
    try {
      await op()
      this.record(cls, 'ok')
      return true
    } catch (error) {
      this.record(cls, codeOf(error))
      return !(error instanceof ConnectionClosedError)
    }
  }

  /** A connected, authenticated client (retried until the node answers or the soak ends). */
  private async client(url: string): Promise<CirclesClient | undefined> {
    while (this.running) {
      try {
        const client = CirclesClient.builder(url).withKey(generateKeyPair().secretKey).build()
        await client.connect()
        await client.authenticate()
        return client
      } catch (error) {
        this.record('good', `CONNECT_${codeOf(error)}`)
        await sleep(500)
      }
    }
    return undefined
  }

  /**
   * One authenticated client of `cls` playing `script(n)` for n = 0, 1, … with `pauseMs` between
   * plays; a connection that closes is replaced by a new client.
   */
  private async playLoop(cls: LoadClass, url: string, pauseMs: number, play: (client: CirclesClient, n: number) => Promise<unknown>): Promise<void> {
    let client = await this.client(url)
    for (let n = 0; this.running && client !== undefined; n++) {
      const current = client
      if (!(await this.attempt(cls, () => play(current, n)))) {
        current.close()
        client = await this.client(url)
      }
      await sleep(pauseMs)
    }
    client?.close()
  }

  private good(index: number): Promise<void> {
    return this.playLoop('good', this.circles.main, this.options.goodPauseMs, (client, n) => {
      const key = `c/${index}/${n % 50}`
      const script =
        n % 3 === 0
          ? `save_data(${JSON.stringify(key)}, { n: ${n}, pad: "${'p'.repeat(n % 200)}" }); load_data(${JSON.stringify(key)}).n`
          : n % 3 === 1
            ? `load_data(${JSON.stringify(key)})`
            : `list_data("c/${index}/").length`
      return client.play(script)
    })
  }

  private async reconnect(): Promise<void> {
    while (this.running) {
      await this.attempt('reconnect', async () => {
        const client = CirclesClient.builder(this.circles.main).withKey(generateKeyPair().secretKey).build()
        await client.connect()
        try {
          await client.authenticate()
          await client.play('CALLER_PUBLIC_KEY.length')
        } finally {
          client.close()
        }
      })
      await sleep(this.options.reconnectPauseMs)
    }
  }

  private hostile(): Promise<void> {
    return this.playLoop('hostile', this.circles.main, this.options.hostilePauseMs, (client, n) => {
      const { script, timeoutMs } = HOSTILE_SCRIPTS[n % HOSTILE_SCRIPTS.length]!
      return client.play(script, timeoutMs === undefined ? {} : { scriptTimeoutMs: timeoutMs })
    })
  }

  private writer(): Promise<void> {
    return this.playLoop('writer', this.circles.quota, this.options.writerPauseMs, (client, n) => {
      const name = JSON.stringify(`w/${n % 20}`)
      // Sizes up to twice the document quota; every third operation deletes.
      const size = 100 + ((n * 7919) % 16_000)
      return client.play(n % 3 === 2 ? `delete_data(${name})` : `save_data(${name}, "x".repeat(${size}))`)
    })
  }

  private async flood(): Promise<void> {
    const victim = generateKeyPair()
    const impostor = generateKeyPair()
    while (this.running) {
      await this.attempt('flood', async () => {
        const client = CirclesClient.builder(this.circles.main).build()
        await client.connect()
        try {
          const { nonce } = await client.request('fetch_nonce', { pubkey: victim.publicKey })
          await client.request('authenticate', { pubkey: victim.publicKey, signature: signPersonalMessage(nonce, impostor.secretKey) })
        } finally {
          client.close()
        }
      })
      await sleep(this.options.floodPauseMs)
    }
  }

  private async bombs(): Promise<void> {
    let client = await this.client(this.circles.bomb)
    while (this.running && client !== undefined) {
      if (!(await this.attempt('bomb', () => client!.play(BOMB)))) {
        client.close()
        client = await this.client(this.circles.bomb)
      }
      const until = performance.now() + this.options.bombEveryMs
      while (this.running && performance.now() < until) await sleep(Math.min(250, this.options.bombEveryMs))
    }
    client?.close()
  }
}

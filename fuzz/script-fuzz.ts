import { WebSocket } from 'ws'
import { messageProblem, playProblem } from './answer-check.js'
import { Random } from './random.js'
import { mutateScript } from './script-mutator.js'

export interface ScriptFuzzOptions {
  /** WebSocket URLs of circles that admit anonymous callers, fuzzed in turn (a circle whose scripts crash a host is quarantined for a while). */
  readonly urls: readonly string[]
  /** Another circle, where the probe runs after every few scripts. */
  readonly bystanderUrl: string
  readonly corpus: readonly string[]
  readonly scripts: number
  /** Stop earlier than `scripts` once this much time has gone by. */
  readonly durationMs?: number
  readonly seed: number
  readonly onProgress?: (ran: number) => void
}

export interface ScriptFuzzReport {
  readonly seed: number
  readonly scripts: number
  readonly elapsedMs: number
  readonly outcomes: Record<string, number>
  readonly problems: string[]
}

/** What the bystander runs: the realm as every run must find it. */
export const PROBE = `[typeof leak, ({}).polluted, Object.isFrozen(Object.prototype), Object.isFrozen(globalThis), [1, 2].push(3),
  JSON.stringify({ a: 1 }), typeof Date.now(), Object.keys(globalThis).length, typeof Symbol.for, typeof Math.random(), 6 * 7].join()`
const PROBE_EVERY = 20
const ANSWER_TIMEOUT_MS = 60_000

interface Client {
  call(params: Record<string, unknown>): Promise<{ text: string; value: Record<string, unknown> }>
  close(): void
}

async function client(url: string): Promise<Client> {
  const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  let next = 1
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>()
  ws.on('message', (data: Buffer) => {
    const text = data.toString()
    const id = (JSON.parse(text) as { id: number }).id
    waiting.get(id)?.resolve(text)
    waiting.delete(id)
  })
  ws.on('close', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`the node closed the socket (${code})`))
    waiting.clear()
  })
  return {
    call(params) {
      const id = next++
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'play', params }))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS)
        waiting.set(id, {
          resolve: (text) => {
            clearTimeout(timer)
            resolve({ text, value: JSON.parse(text) as Record<string, unknown> })
          },
          reject: (error) => {
            clearTimeout(timer)
            reject(error)
          },
        })
      })
    },
    close: () => ws.close(),
  }
}

/**
 * Run scripts mutated from the hostile corpus, one circle after the other, and check every
 * answer (well-formed; a result with output and logs, or a documented error); after every few
 * scripts, and at the end, a bystander circle runs a probe that must find the realm pristine.
 */
export async function fuzzScripts(options: ScriptFuzzOptions): Promise<ScriptFuzzReport> {
  const random = new Random(options.seed)
  const outcomes: Record<string, number> = {}
  const problems: string[] = []
  const started = performance.now()
  const clients = await Promise.all(options.urls.map((url) => client(url)))
  const bystander = await client(options.bystanderUrl)
  const ids = new Set(Array.from({ length: options.scripts + 10 }, (_, i) => String(i + 1)))
  const probe = async (): Promise<string | undefined> => {
    const { value } = await bystander.call({ script: PROBE })
    return (value['result'] as { output?: string } | undefined)?.output
  }
  const baseline = await probe()
  if (baseline === undefined) problems.push('the probe does not run')
  let ran = 0
  try {
    while (ran < options.scripts && (options.durationMs === undefined || performance.now() - started < options.durationMs)) {
      const script = mutateScript(options.corpus, random)
      const target = clients[ran % clients.length]!
      const { text, value } = await target.call({ script, timeout_ms: 50 })
      ran++
      const wrong = messageProblem(text, ids) ?? playProblem(value)
      if (wrong !== undefined) problems.push(`${wrong}: ${text.slice(0, 200)} (script: ${script.slice(0, 200)})`)
      const code = (value['error'] as { data?: { code?: string } } | undefined)?.data?.code ?? 'ok'
      outcomes[code] = (outcomes[code] ?? 0) + 1
      if (ran % PROBE_EVERY === 0) {
        options.onProgress?.(ran)
        const seen = await probe()
        if (seen !== baseline) problems.push(`after script ${ran} the probe saw ${seen} instead of ${baseline} (last script: ${script.slice(0, 300)})`)
      }
      if (problems.length >= 20) break
    }
    const seen = await probe()
    if (seen !== baseline) problems.push(`at the end the probe saw ${seen} instead of ${baseline}`)
  } catch (error) {
    problems.push((error as Error).message)
  } finally {
    for (const c of [...clients, bystander]) c.close()
  }
  return { seed: options.seed, scripts: ran, elapsedMs: performance.now() - started, outcomes, problems }
}

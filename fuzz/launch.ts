import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A node launched for a fuzzing run: the built `circles launch` in a process of its own. */
export interface FuzzNode {
  readonly child: ChildProcess
  /** WebSocket URL of each circle, by name. */
  readonly urls: ReadonlyMap<string, string>
  alive(): boolean
  /** Log lines at error level or above (the last-resort handler's among them). */
  errors(): string[]
  stop(): Promise<void>
}

/** The repository root, from dist/fuzz/ or fuzz/. */
function root(): string {
  const here = fileURLToPath(new URL('.', import.meta.url))
  return here.includes('/dist/') ? join(here, '../../') : join(here, '../')
}

/** Launch the built CLI with `circles` as its circles.json (ports 0); resolves once it serves. */
export async function launchFuzzNode(circles: readonly Record<string, unknown>[]): Promise<FuzzNode> {
  const dir = mkdtempSync(join(tmpdir(), 'circles-fuzz-'))
  writeFileSync(join(dir, 'circles.json'), JSON.stringify(circles))
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', join(root(), 'dist/src/cli/main.js'), 'launch', '--config', join(dir, 'circles.json'), '--db-path', join(dir, 'db'), '--no-admin'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CIRCLES_LOG_LEVEL: 'info' } },
  )
  let running = true
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  void exited.then(() => (running = false))
  const urls = new Map<string, string>()
  const errors: string[] = []
  let partial = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n')
      partial = lines.pop()!
      for (const text of lines) {
        let line: Record<string, unknown>
        try {
          line = JSON.parse(text) as Record<string, unknown>
        } catch {
          continue
        }
        if (typeof line['circle'] === 'string' && typeof line['url'] === 'string') urls.set(line['circle'], line['url'])
        if (typeof line['level'] === 'number' && line['level'] >= 50) errors.push(text.slice(0, 2000))
        if (/^serving /.test(String(line['msg']))) resolve()
      }
    })
    void exited.then(() => reject(new Error('the node exited before it served')))
  })
  return {
    child,
    urls,
    alive: () => running,
    errors: () => errors,
    async stop() {
      if (running) {
        child.kill('SIGKILL')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

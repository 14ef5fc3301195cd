import { mkdirSync, writeFileSync } from 'node:fs'
import { arch, cpus, freemem, loadavg, platform, release, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { readFileSync } from 'node:fs'

const here = dirname(fileURLToPath(import.meta.url))
/** The repository root, whether run from bench/ (sources) or dist/bench/ (built). */
export const ROOT = here.includes(`${'/dist/'}`) ? join(here, '..', '..', '..') : join(here, '..', '..')
export const RESULTS_DIR = join(ROOT, 'bench', 'results')

export function machineInfo() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> }
  const depVersion = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return 'unknown'
    }
  }
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    free_memory_gib: Math.round((freemem() / 2 ** 30) * 10) / 10,
    load_average: loadavg(),
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    circles: pkg.version,
    versions: Object.fromEntries(['ws', 'piscina', 'isolated-vm', 'xstate', 'ioredis', '@noble/curves'].map((d) => [d, depVersion(d)])),
  }
}

/** Write a result file `bench/results/<name>-<timestamp>.json`; returns its path. */
export function writeResult(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const path = join(RESULTS_DIR, `${name}-${stamp}.json`)
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`)
  return path
}

/** A plain-text table with right-aligned numeric columns. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)))
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ')
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line
    })
    .join('\n')
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '—'
  if (Number.isInteger(n) || Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US')
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

/** A one-line progress display on stderr (a plain line per step when not a terminal). */
export function progress(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\u001b[2K${message}`)
  else process.stderr.write(`${message}\n`)
}

export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[2K')
}

import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { cliBuilt } from './helpers/cli-node.js'
import { CLI, ROOT } from './helpers/cli-process.js'
import { launchCli } from './helpers/launched.js'

// The README and docs/ as a newcomer follows them: every link leads somewhere, and the shell
// commands they show that are safe to run here (`--help`, `keygen`, `play` against the demo
// circles, the walkthrough script) run and print what the page says they print.

const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8')

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchors(page: string): Set<string> {
  const text = read(page).replace(/```[\s\S]*?```/g, '')
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)))
}

t.test('every relative link of the README and docs/ leads to a file, and to a heading there', async (t) => {
  for (const page of PAGES) {
    const text = read(page).replace(/```[\s\S]*?```/g, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue
      const [path, anchor] = target!.split('#') as [string, string | undefined]
      const file = path === '' ? page : relative(ROOT, join(ROOT, dirname(page), path))
      t.ok(existsSync(join(ROOT, file)), `${page}: ${target} → ${file} exists`)
      if (anchor !== undefined && file.endsWith('.md') && existsSync(join(ROOT, file))) t.ok(anchors(file).has(anchor), `${page}: ${target} → a heading #${anchor}`)
    }
  }
})

interface Shown {
  readonly page: string
  readonly command: string
  /** What the page says it prints (a comment line after it), `…` standing for anything. */
  readonly expected?: string
}

/** The command without its trailing comment (a `#` outside quotes, after a space). */
function withoutComment(line: string): string {
  let quote = ''
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote !== '') {
      if (c === quote) quote = ''
    } else if (c === "'" || c === '"') quote = c
    else if (c === '#' && /\s/.test(line[i - 1] ?? '')) return line.slice(0, i).trimEnd()
  }
  return line.trimEnd()
}

/** Every command of every `sh` block, continuation lines joined. */
function shownCommands(): Shown[] {
  const shown: Shown[] = []
  for (const page of PAGES) {
    for (const [, block] of read(page).matchAll(/```sh\n([\s\S]*?)```/g)) {
      const lines = block!.split('\n')
      for (let i = 0; i < lines.length; i++) {
        let command = withoutComment(lines[i]!)
        if (command === '' || command.startsWith('#')) continue
        while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1).trimEnd()} ${withoutComment(lines[++i]!).trim()}`
        const next = /^# ([{["]|circles: )(.*)$/.exec(lines[i + 1] ?? '')
        shown.push({ page, command, ...(next === null ? {} : { expected: `${next[1]}${next[2]}` }) })
      }
    }
  }
  return shown
}

const DEMO = /ws:\/\/127\.0\.0\.1:(8090|8091)\//

/** Whether a command is safe to run here: it starts nothing, or plays against the demo circles. */
function safe(command: string): boolean {
  const cli = /^(?:npx )?circles( .*)?$/.exec(command)
  if (cli !== null) {
    const args = cli[1] ?? ''
    return / (--help|-h)\b/.test(args) || args === ' help' || args === '' || /^ keygen( |$)/.test(args) || (/^ play /.test(args) && DEMO.test(args))
  }
  return /^node examples\/[\w-]+\.mjs ws:\/\/127\.0\.0\.1:8090\/$/.test(command)
}

function sh(command: string, cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const { NODE_OPTIONS: _drop, ...env } = process.env
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('close', (code) => resolve({ code, out }))
  })
}

t.test('the shell commands the README and docs show run as shown', { timeout: 120_000 }, async (t) => {
  if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
  const shown = shownCommands()
  const run = shown.filter((s) => safe(s.command))
  for (const s of shown.filter((s) => !safe(s.command))) t.comment(`not run here (${s.page}): ${s.command}`)
  // Every command of the README's command-line tour is run.
  const tour = shown.filter((s) => s.page === 'README.md' && /^npx circles /.test(s.command))
  t.ok(tour.length >= 5, 'the README shows the command-line tour')
  t.same(tour.filter((s) => !safe(s.command)), [], 'every command of the tour is run')
  t.ok(run.some((s) => / --help| -h/.test(s.command)), 'a --help is shown and run')

  // The demo circles of circles.json, on ports of their own, their init scripts from the repository.
  const demo = JSON.parse(read('circles.json')) as Record<string, unknown>[]
  const node = await launchCli(t, { circles: demo.map((c) => ({ ...c, port: 0, script_path: join(ROOT, c['script_path'] as string) })) })
  const urls: Record<string, string> = { '8090': node.circles['alice']!.url, '8091': node.circles['board']!.url }
  const cwd = t.testdir()
  const cli = `"${process.execPath}" --no-node-snapshot "${CLI}"`
  for (const { page, command, expected } of run) {
    const local = command
      .replace(/^(npx )?circles\b/, cli)
      .replace(/^node examples\//, `"${process.execPath}" "${ROOT}examples/`)
      .replace(/(examples\/[\w-]+\.mjs) /, '$1" ')
      .replace(DEMO, (_all, port: string) => urls[port]!)
    const { code, out } = await sh(local, cwd)
    t.equal(code, expected?.startsWith('circles: ') === true ? 1 : 0, `${page}: ${command}`, { out })
    if (expected !== undefined) {
      const pattern = new RegExp(`^${expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
      t.match(out.trim(), pattern, `${page}: prints ${expected}`)
    }
  }
})

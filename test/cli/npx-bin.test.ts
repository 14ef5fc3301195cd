import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../helpers/cli-process.js'

// `npx circles` after a rebuild, as the README runs it: the build must leave the bin executable.
// npx sets the run bit when it first links the package, so only a run after a later build shows
// a build that drops it. The copy starts from the suite's own build (copied: it is in use by the
// tests running beside this one), npx links it, then `npm start --silent` — as docs/operations.md
// pipes it — rebuilds it and serves, and npx runs the bin again. One build in all, offline, with
// an npm cache of its own.

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, out }))
  })
}

t.test('npx circles works after every build', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'circles-npx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pkg = join(dir, 'package')
  mkdirSync(pkg)
  for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'src', 'dist']) cpSync(join(ROOT, name), join(pkg, name), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'))
  const { NODE_OPTIONS: _drop, ...base } = process.env
  const env = { ...base, npm_config_cache: join(dir, 'npm-cache'), npm_config_offline: 'true', npm_config_update_notifier: 'false' }

  const npx = async (when: string) => {
    const help = await run('npx', ['--offline', 'circles', '--help'], pkg, env)
    t.equal(help.code, 0, `npx circles ${when}`, { output: help.out.slice(-2000) })
    t.match(help.out, /^Usage: circles <command>/, `npx circles ${when} prints the usage`)
  }
  await npx('on the first link')

  await t.test('npm start --silent pipes JSON lines only, and a SIGTERM to npm drains the node', async (t) => {
    writeFileSync(join(dir, 'circles.json'), JSON.stringify([{ name: 'piped', port: 0 }]))
    const args = ['start', '--silent', '--', '--config', join(dir, 'circles.json'), '--db-path', join(dir, 'db'), '--admin-port', '0', '--sandbox-processes', '1']
    // A process group of its own, like a terminal session: whatever npm leaves behind is killed with it.
    const npm = spawn('npm', args, { cwd: pkg, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const exited = new Promise<number | null>((resolve) => npm.once('close', resolve))
    t.teardown(() => {
      try {
        process.kill(-npm.pid!, 'SIGKILL')
      } catch {
        // Already gone.
      }
    })
    const lines: string[] = []
    let partial = ''
    const serving = new Promise<void>((resolve) => {
      npm.stdout.on('data', (c: Buffer) => {
        const parts = (partial + c.toString()).split('\n')
        partial = parts.pop()!
        lines.push(...parts)
        if (parts.some((line) => line.includes('"msg":"serving 1 circle(s)'))) resolve()
      })
    })
    await Promise.race([serving, exited])
    t.ok(lines.every((line) => typeof JSON.parse(line) === 'object'), 'every stdout line is JSON: no npm banner', { first: lines[0] })
    // npm hands SIGTERM to its script, and the script's shell has become the node (exec).
    npm.kill('SIGTERM')
    t.equal(await exited, 0)
    t.match(JSON.parse(lines.concat(partial).filter((line) => line !== '').at(-1)!), { msg: 'stopped' }, 'the node drained and stopped')
  })

  t.equal(statSync(join(pkg, 'dist/src/cli/main.js')).mode & 0o111, 0o111, 'the rebuild left the bin executable')
  await npx('after a rebuild')
})

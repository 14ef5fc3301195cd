import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../helpers/cli-process.js'

// `npx circles` after a rebuild, as the README runs it: the build must leave the bin executable.
// npx sets the run bit when it first links the package, so only a run after a second build shows
// a build that drops it. The build runs in a copy of the package (the suite's own dist/ is in use
// by the tests running beside this one), offline, with an npm cache of its own.

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
  for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'src']) cpSync(join(ROOT, name), join(pkg, name), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'))
  const { NODE_OPTIONS: _drop, ...base } = process.env
  const env = { ...base, npm_config_cache: join(dir, 'npm-cache'), npm_config_offline: 'true', npm_config_update_notifier: 'false' }

  for (const round of [1, 2]) {
    const built = await run('npm', ['run', 'build'], pkg, env)
    t.equal(built.code, 0, `build ${round}`, { output: built.out.slice(-2000) })
    t.equal(statSync(join(pkg, 'dist/src/cli/main.js')).mode & 0o111, 0o111, `build ${round} leaves the bin executable`)
    const help = await run('npx', ['--offline', 'circles', '--help'], pkg, env)
    t.equal(help.code, 0, `npx circles after build ${round}`, { output: help.out.slice(-2000) })
    t.match(help.out, /^Usage: circles <command>/, `npx circles after build ${round} prints the usage`)
  }
})

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONTEXT_CREATE_COMMAND } from '../../src/cli/context-command.js'
import { LAUNCH_COMMAND } from '../../src/cli/launch-command.js'
import { PLAY_COMMAND } from '../../src/cli/play-command.js'
import { KEYGEN_COMMAND, USAGE_TEXT, runCli, type CommandSpec } from '../../src/cli/run-cli.js'
import { WATCH_COMMAND } from '../../src/cli/watch-command.js'
import { WORKER_COMMAND } from '../../src/cli/worker-command.js'
import { ROOT } from '../helpers/cli-process.js'
import { io } from '../helpers/cli-io.js'

// Every command explains itself: --help and -h print its synopsis and every option it parses,
// exit 0, and start nothing. The overview names every command, and docs/configuration.md every
// option.

const COMMANDS: readonly CommandSpec[] = [LAUNCH_COMMAND, WORKER_COMMAND, CONTEXT_CREATE_COMMAND, KEYGEN_COMMAND, PLAY_COMMAND, WATCH_COMMAND]

async function help(argv: string[]): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  const cap = io()
  const code = await runCli(argv, cap.io)
  return { code, ...cap.out }
}

for (const command of COMMANDS) {
  t.test(`circles ${command.name} --help`, async (t) => {
    const long = await help([...command.name.split(' '), '--help'])
    t.equal(long.code, 0)
    t.equal(long.stderr, '')
    t.match(long.stdout, new RegExp(`^Usage: circles ${command.name} `))
    for (const [name, option] of Object.entries(command.options)) {
      const flag = `${option.short === undefined ? '' : `-${option.short}, `}--${name}${option.arg === undefined ? '' : ` ${option.arg}`}`
      t.ok(long.stdout.includes(`\n  ${flag} `), `lists ${flag}`)
    }
    t.match(long.stdout, /\n {2}-h, --help {2,}show this text\n$/)
    const short = await help([...command.name.split(' '), '-h'])
    t.same(short, long, '-h is the same')
    // Asked for help, the rest of the line need not be right: nothing is parsed, nothing starts.
    t.same(await help([...command.name.split(' '), '--no-such-option', '--help']), long)
  })
}

t.test('the overview names every command and how to get its options', async (t) => {
  for (const argv of [[], ['help'], ['--help'], ['-h']]) {
    const { code, stdout } = await help(argv)
    t.equal(code, 0)
    t.equal(stdout, USAGE_TEXT)
  }
  for (const command of COMMANDS) t.match(USAGE_TEXT, new RegExp(`\\n {2}${command.name} `), `names ${command.name}`)
  t.match(USAGE_TEXT, /"circles <command> --help" \(or -h\)/)
})

t.test('circles context without create shows its help; another word is USAGE', async (t) => {
  t.same(await help(['context']), await help(['context', 'create', '--help']))
  await t.rejects(runCli(['context', 'delete'], io().io), { code: 'USAGE', message: /unknown command "context delete"/ })
})

t.test("docs/configuration.md's command line names every option of every command", async (t) => {
  const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')
  const section = /## Command line\n([\s\S]*?)\n## /.exec(doc)?.[1] ?? ''
  for (const command of COMMANDS) {
    t.ok(section.includes(`circles ${command.name}`), `circles ${command.name}`)
    for (const name of Object.keys(command.options)) t.ok(section.includes(`--${name}`), `${command.name}: --${name}`)
  }
})

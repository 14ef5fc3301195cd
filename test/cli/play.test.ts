import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../../src/cli/run-cli.js'
import { generateKeyPair, writeKeyFile } from '../../src/identity/index.js'
import { io } from '../helpers/cli-io.js'
import { startNode } from '../helpers/node.js'
import { CLI, cliBuilt } from '../helpers/cli-node.js'

t.test('circles play', async (t) => {
  const { url, circle } = await startNode(t)
  const dir = t.testdir()
  const keyFile = join(dir, 'me.key')
  const me = generateKeyPair()
  await writeKeyFile(keyFile, me)

  t.test('authenticates with a key file and prints the output, logs on stderr', async (t) => {
    const cap = io()
    t.equal(await runCli(['play', '--url', url, '--key', keyFile, '-e', 'print("a log"); CALLER_PUBLIC_KEY'], cap.io), 0)
    t.equal(cap.out.stdout, `${me.publicKey}\n`)
    t.equal(cap.out.stderr, 'a log\n')
  })

  t.test('reads the script from a file, and --json prints the whole result', async (t) => {
    const script = join(dir, 'script.js')
    writeFileSync(script, '"from a file"')
    const cap = io()
    t.equal(await runCli(['play', '--url', url, '--key', circle.secretKey, '--json', script], cap.io), 0)
    t.match(JSON.parse(cap.out.stdout), { output: 'from a file', logs: [], task_id: String, timings: { queued_ms: Number, run_ms: Number, cpu_ms: Number } })
  })

  t.test('an error answer prints its data.code and exits 1', async (t) => {
    const cap = io()
    t.equal(await runCli(['play', '--url', url, '--key', keyFile, '-e', 'save_data("x", 1)'], cap.io), 1)
    t.match(cap.out.stderr, /^circles: FORBIDDEN: save_data: /)
    const anon = io()
    t.equal(await runCli(['play', '--url', url, '-e', '1'], anon.io), 1, 'no key: anonymous, refused by the default policy')
    t.match(anon.out.stderr, /AUTH_REQUIRED/)
  })

  t.test('a server that is not there exits 1 with a clear message', async (t) => {
    const cap = io()
    t.equal(await runCli(['play', '--url', 'ws://127.0.0.1:1/', '-e', '1'], cap.io), 1)
    t.match(cap.out.stderr, /^circles: cannot connect to ws:\/\/127\.0\.0\.1:1\//)
  })

  t.test('--key - reads the key from standard input (where ps does not show it)', async (t) => {
    if (!cliBuilt()) return t.fail('run npm run build first (npm test does)')
    for (const [what, text] of [
      ['a key file\'s JSON', readFileSync(keyFile, 'utf8')],
      ['a 64-hex secret key', `${me.secretKey}\n`],
    ] as const) {
      const { NODE_OPTIONS: _drop, ...env } = process.env
      const child = spawn(process.execPath, ['--no-node-snapshot', CLI, 'play', '--url', url, '--key', '-', '-e', 'CALLER_PUBLIC_KEY'], { stdio: ['pipe', 'pipe', 'pipe'], env })
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      child.stdin.end(text)
      const code = await new Promise((resolve) => child.on('close', resolve))
      t.equal(code, 0, what)
      t.equal(out, `${me.publicKey}\n`, `${what}: authenticated as its key`)
    }
    await t.rejects(runCli(['play', '--url', url, '--key', '-', '-'], io().io), { code: 'USAGE', message: /cannot both read standard input/ }, 'not with a script from standard input too')
  })

  t.test('bad usage is a USAGE error naming the problem', async (t) => {
    const cases: [string[], RegExp][] = [
      [['play', '-e', '1'], /--url WS_URL is required/],
      [['play', '--url', 'http://x', '-e', '1'], /must start with ws:\/\//],
      [['play', '--url', url], /exactly one script/],
      [['play', '--url', url, '-e', '1', 'file.js'], /exactly one script/],
      [['play', '--url', url, '--timeout-ms', 'soon', '-e', '1'], /--timeout-ms must be a positive integer/],
      [['play', '--url', url, join(dir, 'missing.js')], /cannot read/],
      [['play', '--url', url, '--key', join(dir, 'nokey'), '-e', '1'], /cannot read key file/],
    ]
    for (const [argv, message] of cases) {
      await t.rejects(runCli(argv, io().io), { code: message.source.includes('key file') ? 'KEY_FILE_INVALID' : 'USAGE', message }, argv.join(' '))
    }
  })
})

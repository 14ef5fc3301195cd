import t from 'tap'
import { runCli } from '../../src/cli/run-cli.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { io } from '../helpers/cli-io.js'
import { startNode } from '../helpers/node.js'

async function connectionsTotal(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text()
  return Number(/^circles_connections_total (\d+)$/m.exec(text)?.[1])
}

t.test('circles play --repeat N --concurrency C', async (t) => {
  const { url, admin } = await startNode(t)
  const key = generateKeyPair().secretKey

  t.test('C connections run N plays and one line sums them up', async (t) => {
    const before = await connectionsTotal(admin)
    const cap = io()
    t.equal(await runCli(['play', '--url', url, '--key', key, '--repeat', '40', '--concurrency', '4', '-e', '1 + 1'], cap.io), 0)
    t.match(cap.out.stdout, /^40 plays over 4 connection\(s\) in [\d.]+ s: [\d.]+ req\/s, p50 [\d.]+ ms, p99 [\d.]+ ms, errors: none\n$/)
    t.equal(cap.out.stderr, '')
    t.equal((await connectionsTotal(admin)) - before, 4, 'one socket per unit of concurrency')
  })

  t.test('--json gives the same summary as an object; errors are counted by code and exit 1', async (t) => {
    const cap = io()
    t.equal(await runCli(['play', '--url', url, '--key', key, '--repeat', '6', '--concurrency', '2', '--json', '-e', 'save_data("x", 1)'], cap.io), 1)
    const summary = JSON.parse(cap.out.stdout)
    t.match(summary, { plays: 6, connections: 2, seconds: Number, req_per_s: Number, p50_ms: Number, p99_ms: Number })
    t.same(summary.errors, { FORBIDDEN: 6 })
    t.ok(summary.p50_ms <= summary.p99_ms)
    const text = io()
    t.equal(await runCli(['play', '--url', url, '--repeat', '3', '-e', '1'], text.io), 1)
    t.match(text.out.stdout, /errors: AUTH_REQUIRED 3\n$/)
  })

  t.test('bad counts are USAGE errors', async (t) => {
    const cases: [string[], RegExp][] = [
      [['--repeat', '0'], /--repeat must be a positive integer/],
      [['--repeat', 'many'], /--repeat must be a positive integer/],
      [['--repeat', '2', '--concurrency', '3'], /--concurrency must not exceed --repeat/],
      [['--concurrency', '2'], /--concurrency must not exceed --repeat/],
    ]
    for (const [args, message] of cases) {
      await t.rejects(runCli(['play', '--url', url, ...args, '-e', '1'], io().io), { code: 'USAGE', message }, args.join(' '))
    }
  })
})

import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { runCli } from '../../src/cli/run-cli.js'
import { io } from '../helpers/cli-io.js'
import { ROOT, spawnCli } from '../helpers/cli-process.js'
import { startNode } from '../helpers/node.js'

t.test('circles watch prints one JSON line per notice until a signal', async (t) => {
  const { node, circle, url } = await startNode(t, { policy: { run: 'anonymous', write: 'authenticated' } })
  const write = (script: string) => node.peers.play(circle.publicKey, { caller: circle.publicKey, script })
  const watch = spawnCli(t, ['watch', '--url', url, '--prefix', 'posts/', '--topics', 'typing,presence/'], { cwd: ROOT, env: process.env })
  const subscribed = await watch.waitFor((line) => line['type'] === 'subscribed', 20_000)
  t.match(subscribed, { type: 'subscribed', epoch: /^[0-9a-f]{16}$/, seq: 0 })
  await write('save_data("posts/1", { text: "hi" }); save_data("other", 1); emit("typing", true); emit("chat", 1)')
  await watch.waitFor((line) => line['type'] === 'event')
  await write('delete_data("posts/1")')
  await watch.waitFor((line) => line['op'] === 'delete')
  const { epoch } = subscribed as unknown as { epoch: string }
  t.same(watch.lines, [
    subscribed,
    { type: 'changed', epoch, seq: 1, name: 'posts/1', op: 'save', value: { text: 'hi' } },
    { type: 'event', epoch, seq: 3, topic: 'typing', value: true, caller: circle.publicKey },
    { type: 'changed', epoch, seq: 5, name: 'posts/1', op: 'delete' },
  ])

  await t.test('--after resumes from a printed position', async (t) => {
    const again = spawnCli(t, ['watch', '--url', url, '--after', `${epoch}:1`, '--key', circle.secretKey], { cwd: ROOT, env: process.env })
    await again.waitFor((line) => line['type'] === 'changed' && line['seq'] === 5, 20_000)
    t.same(
      again.lines.map((line) => [line['type'], line['seq']]),
      [['subscribed', 5], ['changed', 2], ['event', 3], ['event', 4], ['changed', 5]],
    )
    again.child.kill('SIGINT')
    t.same(await again.exited, { code: 0, signal: null }, 'Ctrl-C ends it with 0')
  })

  watch.child.kill('SIGTERM')
  t.same((await watch.exited).code, 0)
})

t.test('circles watch: a refusal exits 1 with its code; bad usage is USAGE', async (t) => {
  const { url } = await startNode(t, { policy: { run: 'owner' } })
  const refused = io()
  t.equal(await runCli(['watch', '--url', url, '--key', generateKeyPair().secretKey], refused.io), 1)
  t.match(refused.out.stderr, /^circles: FORBIDDEN: /)
  const cases: [string[], RegExp][] = [
    [['watch'], /--url WS_URL is required/],
    [['watch', '--url', 'http://x'], /must start with ws:\/\//],
    [['watch', '--url', url, '--after', 'soon'], /--after must be EPOCH:SEQ/],
    [['watch', '--url', url, '--topics', 'a,,b'], /comma-separated/],
    [['watch', '--url', url, '--since', '1'], /Unknown option '--since'/],
  ]
  for (const [argv, message] of cases) await t.rejects(runCli(argv, io().io), { code: 'USAGE', message }, argv.join(' '))
})

import t from 'tap'
import { silentLogger } from '../../src/log/index.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CirclesClient, type ClientState } from '../../src/client/index.js'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { CircleNode } from '../../src/node/index.js'

function start(dbPath: string, circle: KeyPair, port: number): Promise<CircleNode> {
  return CircleNode.start({
    dbPath,
    circles: [{ name: 'test', keyPair: circle, host: '127.0.0.1', port }],
    sandbox: { processes: 1 },
    logger: silentLogger(),
  })
}

t.test('after the node restarts, the client reconnects and authenticates again', async (t) => {
  const dbPath = mkdtempSync(join(tmpdir(), 'circles-test-node-'))
  t.teardown(() => rmSync(dbPath, { recursive: true, force: true }))
  const circle = generateKeyPair()
  const first = await start(dbPath, circle, 0)
  const { port, url } = first.served[0]!
  const me = generateKeyPair()
  const client = CirclesClient.builder(url).withKey(me.secretKey).withReconnect({ initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 100 }).build()
  const states: ClientState[] = []
  const reached = (wanted: ClientState) => new Promise<void>((resolve) => client.onStateChange((s) => s === wanted && resolve()))
  client.onStateChange((state) => states.push(state))
  let second: CircleNode | undefined
  t.teardown(async () => {
    await client.close()
    await second?.close()
  })
  await client.connect()
  await client.authenticate()
  t.equal((await client.play('CALLER_PUBLIC_KEY')).output, me.publicKey)

  const reconnecting = reached('reconnecting')
  await first.close()
  await reconnecting
  const authenticated = reached('authenticated')
  second = await start(dbPath, circle, port)
  await authenticated
  t.equal((await client.play('CALLER_PUBLIC_KEY')).output, me.publicKey, 'authenticated as the same key on the new node')
  t.same(states.slice(0, 3), ['connecting', 'open', 'authenticated'])
  t.same(states.slice(3).filter((s, i, all) => s !== all[i - 1]), ['reconnecting', 'authenticated'])
})

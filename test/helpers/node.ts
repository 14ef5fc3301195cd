import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { CircleNode, type CircleNodeOptions } from '../../src/node/index.js'
import { silentLogger } from '../../src/log/index.js'

export interface TestNode {
  readonly node: CircleNode
  readonly circle: KeyPair
  readonly url: string
  readonly http: string
  /** The admin listener (metrics, detailed health). */
  readonly admin: string
  /** The node's database directory. */
  readonly dbPath: string
}

/** A node serving one circle (default policy) on an ephemeral port, closed at teardown. */
export async function startNode(
  t: { teardown(fn: () => unknown): void },
  options: Partial<CircleNodeOptions> & { policy?: unknown } = {},
): Promise<TestNode> {
  const circle = generateKeyPair()
  const { policy, ...rest } = options
  // A directory of its own, not t.testdir(): a later t.testdir() in the same test would reset it.
  const dbPath = mkdtempSync(join(tmpdir(), 'circles-test-node-'))
  const node = await CircleNode.start({
    dbPath,
    circles: [{ name: 'test', keyPair: circle, host: '127.0.0.1', port: 0, ...(policy === undefined ? {} : { policy }) }],
    sandbox: { processes: 1 },
    logger: silentLogger(),
    admin: { port: 0 },
    ...rest,
  })
  t.teardown(async () => {
    await node.close()
    rmSync(dbPath, { recursive: true, force: true })
  })
  const served = node.served[0]!
  return { node, circle, url: served.url, http: `http://127.0.0.1:${served.port}`, admin: node.adminUrl!, dbPath }
}

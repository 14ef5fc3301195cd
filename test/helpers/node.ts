import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { CircleNode, type CircleNodeOptions } from '../../src/node/index.js'

export interface TestNode {
  readonly node: CircleNode
  readonly circle: KeyPair
  readonly url: string
  readonly http: string
}

/** A node serving one circle (default policy) on an ephemeral port, closed at teardown. */
export async function startNode(
  t: { teardown(fn: () => unknown): void; testdir(): string },
  options: Partial<CircleNodeOptions> & { policy?: unknown } = {},
): Promise<TestNode> {
  const circle = generateKeyPair()
  const { policy, ...rest } = options
  const node = await CircleNode.start({
    dbPath: t.testdir(),
    circles: [{ name: 'test', keyPair: circle, host: '127.0.0.1', port: 0, ...(policy === undefined ? {} : { policy }) }],
    sandbox: { processes: 1 },
    log: () => {},
    ...rest,
  })
  t.teardown(() => node.close())
  const served = node.served[0]!
  return { node, circle, url: served.url, http: `http://127.0.0.1:${served.port}` }
}

import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Wallet, getBytes } from 'ethers'
import { createSiweMessage } from 'viem/siwe'
import { privateKeyToAccount } from 'viem/accounts'
import { WebSocket, WebSocketServer } from 'ws'
import {
  CirclesClient,
  eip1193Signer,
  ethersSigner,
  secretKeySigner,
  viemSigner,
  type Eip1193Provider,
  type Signer,
} from '../../src/client/index.js'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { startNode } from '../helpers/node.js'
import { rpcCall } from '../helpers/raw-socket.js'

// The attacks on sign-in, played by servers inside the test: a relay between the project's
// client and an honest node, and servers that ask the client to sign some other text.

type Teardown = { teardown(fn: () => unknown): void }

/** Each signer the client offers, with a count of the times its signing function really ran. */
async function signers(pair: KeyPair): Promise<{ name: string; signer: Signer; signed: () => number }[]> {
  const privateKey = `0x${pair.secretKey}` as const
  const raw = secretKeySigner(pair.secretKey)
  let rawCalls = 0
  const wallet = new Wallet(privateKey)
  const walletSign = wallet.signMessage.bind(wallet)
  let ethersCalls = 0
  wallet.signMessage = (message) => {
    ethersCalls++
    return walletSign(message)
  }
  const account = privateKeyToAccount(privateKey)
  let viemCalls = 0
  const walletForProvider = new Wallet(privateKey)
  let providerCalls = 0
  const provider: Eip1193Provider = {
    async request(args) {
      if (args.method === 'eth_requestAccounts') return [walletForProvider.address]
      if (args.method === 'personal_sign') {
        providerCalls++
        return walletForProvider.signMessage(getBytes(args.params![0] as string))
      }
      throw new Error(`unsupported ${args.method}`)
    },
  }
  return [
    {
      name: 'a raw secret key',
      signer: { publicKey: raw.publicKey!, signMessage: (m) => (rawCalls++, raw.signMessage(m)) },
      signed: () => rawCalls,
    },
    { name: 'an ethers Wallet', signer: ethersSigner(wallet), signed: () => ethersCalls },
    {
      name: 'a viem account',
      signer: viemSigner({ ...account, signMessage: (args) => (viemCalls++, account.signMessage(args)) }),
      signed: () => viemCalls,
    },
    { name: 'an EIP-1193 wallet', signer: await eip1193Signer(provider), signed: () => providerCalls },
  ]
}

async function listen(t: Teardown): Promise<{ server: WebSocketServer; authority: string }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(server, 'listening')
  t.teardown(
    () =>
      new Promise((resolve) => {
        for (const client of server.clients) client.terminate()
        server.close(resolve)
      }),
  )
  return { server, authority: `127.0.0.1:${(server.address() as AddressInfo).port}` }
}

interface Relay {
  readonly url: string
  /** Every request the victim's client sent through the relay. */
  readonly fromVictim: { method: string; params: Record<string, unknown> }[]
  /** Every frame the node sent the relay. */
  readonly fromNode: any[]
  /** The relay's own socket to the node (the last one opened). */
  upstream(): WebSocket
}

/**
 * A relay: each client socket gets a socket of the relay's own to the node, and frames are
 * forwarded both ways, the node's through `rewrite` — what a server that wants to become its
 * visitors on another node does.
 */
async function relay(t: Teardown, nodeUrl: string, rewrite: (text: string, own: string) => string = (text) => text): Promise<Relay> {
  const { server, authority } = await listen(t)
  const fromVictim: Relay['fromVictim'] = []
  const fromNode: any[] = []
  let last: WebSocket | undefined
  server.on('connection', (victim) => {
    const upstream = new WebSocket(nodeUrl)
    last = upstream
    const opened = once(upstream, 'open')
    victim.on('message', (data) => {
      fromVictim.push(JSON.parse(data.toString()))
      void opened.then(() => upstream.send(data.toString()))
    })
    upstream.on('message', (data) => {
      fromNode.push(JSON.parse(data.toString()))
      victim.send(rewrite(data.toString(), authority))
    })
    upstream.on('close', () => victim.close())
  })
  return { url: `ws://${authority}/`, fromVictim, fromNode, upstream: () => last! }
}

async function connected(t: Teardown, url: string, signer: Signer, contextKey?: string): Promise<CirclesClient> {
  let builder = CirclesClient.builder(url).withKey(signer).withTimeout(10_000)
  if (contextKey !== undefined) builder = builder.withContextKey(contextKey)
  const client = builder.build()
  t.teardown(() => client.close())
  await client.connect()
  return client
}

t.test('a relay between the client and an honest node does not become the victim', async (t) => {
  // The victim owns the circle: a relay that signed in as the victim could write in it.
  const { node, circle: victim, url } = await startNode(t)
  const documents = () => node.peers.play(victim.publicKey, { caller: victim.publicKey, script: 'list_data()' }).then((r) => r.result)

  for (const { name, signer, signed } of await signers(victim)) {
    t.test(`${name}: the message names the node's domain, not the relay's; nothing is signed`, async (t) => {
      const mitm = await relay(t, url)
      const client = await connected(t, mitm.url, signer)
      await t.rejects(client.authenticate(), { code: 'SIGN_IN_MISMATCH', field: 'domain', message: /expected "127\.0\.0\.1:\d+ wants you/ })
      t.equal(signed(), 0, 'the signer was never called')
      t.same(mitm.fromVictim.map((r) => r.method), ['fetch_nonce'], 'no authenticate went through the relay')
      // The relay tries its own socket to the node: it is anonymous there.
      const answer = await rpcCall(mitm.upstream(), 99, 'play', { script: 'save_data("pwned", 1)' })
      t.match(answer, { error: { data: { code: 'AUTH_REQUIRED' } } }, 'the relay is anonymous on the node')
      t.same(await documents(), [], 'nothing was written in the victim’s context')
    })
  }

  t.test('a relay that rewrites the domain gets a signature the node refuses (it verifies its own text)', async (t) => {
    const { signer, signed } = (await signers(victim))[0]!
    const nodeAuthority = new URL(url).host
    const mitm = await relay(t, url, (text, own) => text.replaceAll(nodeAuthority, own))
    const client = await connected(t, mitm.url, signer)
    await t.rejects(client.authenticate(), { code: 'INVALID_CREDENTIALS' })
    t.equal(signed(), 1, 'the victim signed the relay’s own text, which is good for the relay’s domain only')
    t.same(
      mitm.fromNode.map((a) => a.result !== undefined ? 'result' : a.error.data.code),
      ['result', 'INVALID_CREDENTIALS'],
      'the node refused the signature',
    )
    t.same(await documents(), [])
  })

  t.test('a relay that names itself in the Host it sends the node is refused at the upgrade', async (t) => {
    const { authority } = await listen(t)
    const upstream = new WebSocket(url, { headers: { Host: authority } })
    const status = await new Promise<number>((resolve) => {
      upstream.once('open', () => resolve(101))
      upstream.once('unexpected-response', (_request, response) => resolve(response.statusCode!))
    })
    t.equal(status, 421)
    upstream.terminate()
  })
})

t.test('a server that asks for a signature over any other text gets none, from any signer', async (t) => {
  const owner = generateKeyPair()
  const context = generateKeyPair().publicKey
  const { server, authority } = await listen(t)
  // The text the next fetch_nonce is answered with (the server plays a hostile node).
  let next: (address: string) => { text: string; expiresAt: number } = () => ({ text: '', expiresAt: 0 })
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const request = JSON.parse(data.toString())
      const result =
        request.method === 'fetch_nonce'
          ? (({ text, expiresAt }) => ({ nonce: text, expires_at: expiresAt }))(next(request.params.address ?? new Wallet(`0x${owner.secretKey}`).address))
          : { authenticated: true }
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: request.id, result }))
    })
  })
  const url = `ws://${authority}/${context}`
  const address = new Wallet(`0x${owner.secretKey}`).address as `0x${string}`
  /** The message this client expects, except for what `change` replaces. */
  const siwe = (change: Partial<Parameters<typeof createSiweMessage>[0]> = {}) => {
    const issuedAt = change.issuedAt ?? new Date()
    const expirationTime = change.expirationTime ?? new Date(issuedAt.getTime() + 300_000)
    const text = createSiweMessage({
      domain: authority,
      address,
      statement: `Sign in to the Circles context ${context}.`,
      uri: url,
      version: '1',
      chainId: 1,
      nonce: 'f00dfeed0123456789abcdef',
      ...change,
      issuedAt,
      expirationTime,
    })
    return { text, expiresAt: Math.floor(expirationTime.getTime() / 1000) }
  }
  const hour = 3_600_000
  const refused: [string, string, () => { text: string; expiresAt: number }][] = [
    ['a bare string', 'layout', () => ({ text: 'xK3q9ZbLmN0pQrSt', expiresAt: Math.floor(Date.now() / 1000) + 300 })],
    ['a SIWE message for another site', 'layout', () => siwe({ domain: 'app.example.org', uri: 'https://app.example.org/login', statement: 'Sign in to App.' })],
    ['a Circles message for another domain', 'domain', () => siwe({ domain: 'circle.example' })],
    ['another URI', 'uri', () => siwe({ uri: `ws://${authority}/` })],
    ['another address', 'address', () => siwe({ address: new Wallet(`0x${generateKeyPair().secretKey}`).address as `0x${string}` })],
    ['another context', 'statement', () => siwe({ statement: `Sign in to the Circles context ${generateKeyPair().publicKey}.` })],
    ['another chain', 'chain id', () => siwe({ chainId: 5 })],
    ['a scheme before the domain', 'domain', () => siwe({ scheme: 'https' })],
    ['a Resources line', 'layout', () => siwe({ resources: ['https://evil.example/grant'] })],
    ['issued an hour ago', 'issued at', () => siwe({ issuedAt: new Date(Date.now() - hour), expirationTime: new Date(Date.now() + hour) })],
    ['issued in an hour', 'issued at', () => siwe({ issuedAt: new Date(Date.now() + hour) })],
    ['expiring before it was issued', 'expiration time', () => siwe({ expirationTime: new Date(Date.now() - 1_000) })],
    ['an expires_at that is not its expiration time', 'expiration time', () => ({ ...siwe(), expiresAt: Math.floor(Date.now() / 1000) + 3_600 })],
  ]

  for (const { name, signer, signed } of await signers(owner)) {
    t.test(name, async (t) => {
      const client = await connected(t, url, signer)
      for (const [what, field, text] of refused) {
        next = text
        await t.rejects(client.authenticate(), { code: 'SIGN_IN_MISMATCH', field, data: { code: 'SIGN_IN_MISMATCH', field } }, what)
      }
      t.equal(signed(), 0, 'the signer was never called')
      next = () => siwe()
      t.equal(await client.authenticate(), owner.publicKey, 'the message it expects is signed (the check can pass)')
      t.equal(signed(), 1)
    })
  }

  t.test('on a `/` URL the client checks the context key it was given', async (t) => {
    const { signer, signed } = (await signers(owner))[0]!
    const root = `ws://${authority}/`
    const rooted = (key: string) => () => siwe({ uri: root, statement: `Sign in to the Circles context ${key}.` })
    const client = await connected(t, root, signer, context)
    next = rooted(generateKeyPair().publicKey)
    await t.rejects(client.authenticate(), { code: 'SIGN_IN_MISMATCH', field: 'statement' })
    t.equal(signed(), 0)
    next = rooted(context)
    t.equal(await client.authenticate(), owner.publicKey)
  })
})

import t from 'tap'
import { Wallet, getBytes } from 'ethers'
import { privateKeyToAccount } from 'viem/accounts'
import { CirclesClient, eip1193Signer, ethersSigner, secretKeySigner, viemSigner, type Eip1193Provider, type Signer } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { startNode } from '../helpers/node.js'

/** Authenticate with `key`, then ask the node who the caller is. */
async function whoAmI(t: { teardown(fn: () => unknown): void }, url: string, key: string | Signer): Promise<{ publicKey: string; caller: string }> {
  const client = CirclesClient.builder(url).withKey(key).build()
  t.teardown(() => client.close())
  await client.connect()
  const publicKey = await client.authenticate()
  const { output } = await client.play('CALLER_PUBLIC_KEY')
  return { publicKey, caller: output }
}

t.test('signers: the client never needs the secret key', async (t) => {
  const { url } = await startNode(t)
  const pair = generateKeyPair()
  const privateKey = `0x${pair.secretKey}` as const
  const expected = { publicKey: pair.publicKey, caller: pair.publicKey }

  t.test('a raw secret key (and its explicit adapter)', async (t) => {
    t.same(await whoAmI(t, url, pair.secretKey), expected)
    t.same(await whoAmI(t, url, secretKeySigner(privateKey)), expected)
  })

  t.test('an ethers Wallet: ethers signs', async (t) => {
    const wallet = new Wallet(privateKey)
    t.same(await whoAmI(t, url, ethersSigner(wallet)), expected)
    // A Wallet is itself shaped like a Signer ({ address, signMessage }): the address form.
    t.same(await whoAmI(t, url, wallet), expected)
  })

  t.test('a viem account: viem signs with signMessage({ message })', async (t) => {
    t.same(await whoAmI(t, url, viemSigner(privateKeyToAccount(privateKey))), expected)
  })

  t.test('an EIP-1193 provider (a browser wallet): personal_sign, address only', async (t) => {
    const wallet = new Wallet(privateKey)
    const calls: { method: string; params?: readonly unknown[] }[] = []
    // What a browser wallet does, backed by ethers: accounts, and personal_sign over hex UTF-8.
    const provider: Eip1193Provider = {
      async request(args) {
        calls.push(args)
        if (args.method === 'eth_requestAccounts') return [wallet.address]
        if (args.method === 'personal_sign') return wallet.signMessage(getBytes(args.params![0] as string))
        throw new Error(`unsupported ${args.method}`)
      },
    }
    const signer = await eip1193Signer(provider)
    t.equal(signer.publicKey, undefined, 'a wallet gives no public key')
    t.equal(signer.address, wallet.address)
    t.same(await whoAmI(t, url, signer), expected, 'the node recovered the key behind the address')
    t.same(calls.map((c) => c.method), ['eth_requestAccounts', 'personal_sign'])
    t.equal(calls[1]!.params![1], wallet.address)
    t.match(calls[1]!.params![0], /^0x[0-9a-f]+$/, 'the message goes as hex of its UTF-8 bytes')
  })

  t.test('an address-only signer that signs for another key is refused', async (t) => {
    const other = new Wallet(`0x${generateKeyPair().secretKey}`)
    const liar: Signer = { address: new Wallet(privateKey).address, signMessage: (m) => other.signMessage(m) }
    const client = CirclesClient.builder(url).withKey(liar).build()
    t.teardown(() => client.close())
    await client.connect()
    await t.rejects(client.authenticate(), { code: 'INVALID_CREDENTIALS' })
  })
})

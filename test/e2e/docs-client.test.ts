import t from 'tap'
import { Wallet } from 'ethers'
import { WebSocket } from 'ws'
import { startNode } from '../helpers/node.js'
import { rpcCall } from '../helpers/raw-socket.js'

// A client written from docs/protocol.md alone — `ws`, a wallet library and a JSON-RPC call
// (one request per text frame, answers matched by id), nothing of this project — signs in the way the docs say: fetch the sign-in message, check that it names the
// host it dialled, sign the text with `signMessage`, send the signature.

/** Sign in as `wallet`, claiming its public key or (as a browser wallet must) its address; then ask who the caller is. */
async function signInFromTheDocs(url: string, wallet: Wallet, claim: 'pubkey' | 'address'): Promise<string> {
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  try {
    const who = claim === 'pubkey' ? { pubkey: wallet.signingKey.compressedPublicKey } : { address: wallet.address }
    const { result } = await rpcCall(ws, 1, 'fetch_nonce', who)
    const message: string = result.nonce
    // The first line names the node as the client dialled it; anything else is not ours to sign.
    if (message.split('\n')[0] !== `${new URL(url).host} wants you to sign in with your Ethereum account:`) throw new Error(`not for ${url}: ${message}`)
    const signature = await wallet.signMessage(message)
    const authenticated = await rpcCall(ws, 2, 'authenticate', { ...who, signature })
    if (authenticated.result?.authenticated !== true) throw new Error(JSON.stringify(authenticated))
    const played = await rpcCall(ws, 3, 'play', { script: 'CALLER_PUBLIC_KEY' })
    return played.result.output
  } finally {
    ws.close()
  }
}

t.test('a client written only from the protocol docs signs in with a wallet library', async (t) => {
  const { url, circle } = await startNode(t)
  const wallet = new Wallet(Wallet.createRandom().privateKey)
  const key = wallet.signingKey.compressedPublicKey.slice(2)
  t.equal(await signInFromTheDocs(url, wallet, 'pubkey'), key, 'with { pubkey }')
  t.equal(await signInFromTheDocs(url, wallet, 'address'), key, 'with { address }: the node recovers the key')
  t.equal(await signInFromTheDocs(`${url}${circle.publicKey}`, wallet, 'pubkey'), key, 'on a /<key> path')
})

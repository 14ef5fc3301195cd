// Talk to a Circle with no Circles code at all: any WebSocket client plus any Ethereum-style
// signer. Here: the `ws` package and @noble/curves (ethers' `wallet.signMessage(nonce)` or
// viem's `account.signMessage({ message: nonce })` produce the same signature). The `nonce` is a
// Sign-In with Ethereum message naming the host it was fetched from: check that before signing
// (docs/protocol.md, "The sign-in message").
//
//   node examples/walkthrough.mjs ws://127.0.0.1:8090/ [SECRET_KEY_HEX]
import WebSocket from 'ws'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'

const url = process.argv[2] ?? 'ws://127.0.0.1:8090/'
const secret = process.argv[3] ? hexToBytes(process.argv[3]) : secp256k1.utils.randomSecretKey()
const pubkey = bytesToHex(secp256k1.getPublicKey(secret, true))

// EIP-191 personal_sign: keccak256("\x19Ethereum Signed Message:\n" + len + message), r‖s‖v.
function personalSign(message) {
  const body = utf8ToBytes(message)
  const digest = keccak_256(new Uint8Array([...utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`), ...body]))
  const sig = secp256k1.sign(digest, secret, { prehash: false, format: 'recovered' })
  return `0x${bytesToHex(sig.subarray(1))}${(27 + sig[0]).toString(16)}`
}

const ws = new WebSocket(url)
ws.on('error', (error) => {
  console.error(`cannot talk to ${url}: ${error.message}`)
  process.exitCode = 1
})
let nextId = 1
const pending = new Map()
ws.on('message', (data) => {
  const message = JSON.parse(data.toString())
  pending.get(message.id)?.(message)
  pending.delete(message.id)
})
const call = (method, params) =>
  new Promise((resolve, reject) => {
    const id = nextId++
    pending.set(id, (m) => (m.error ? reject(new Error(`${m.error.data.code}: ${m.error.message}`)) : resolve(m.result)))
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
  })

ws.on('open', async () => {
  try {
    const { nonce } = await call('fetch_nonce', { pubkey })
    if (!nonce.startsWith(`${new URL(url).host} wants you to sign in`)) throw new Error(`not a sign-in for ${url}: ${nonce}`)
    await call('authenticate', { pubkey, signature: personalSign(nonce) })
    const { output } = await call('play', { script: '({ me: CALLER_PUBLIC_KEY, circle: CIRCLE_PUBLIC_KEY, profile: load_data("profile") })' })
    console.log(output)
  } catch (error) {
    console.error(error.message)
    process.exitCode = 1
  } finally {
    ws.close()
  }
})

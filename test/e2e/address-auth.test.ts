import t from 'tap'
import { Wallet } from 'ethers'
import { generateKeyPair, signPersonalMessage } from '../../src/identity/index.js'
import { openSocket } from '../helpers/raw-socket.js'
import { startNode } from '../helpers/node.js'

t.test('fetch_nonce and authenticate with { address } (a browser wallet exposes no public key)', async (t) => {
  const { url } = await startNode(t)
  const pair = generateKeyPair()
  const wallet = new Wallet(`0x${pair.secretKey}`)

  t.test('the caller is the key recovered from the signature, in canonical compressed form', async (t) => {
    const socket = await openSocket(url)
    // ethers gives the EIP-55 mixed-case form; addresses compare case-insensitively.
    const nonce = await socket.call('fetch_nonce', { address: wallet.address })
    t.type(nonce.result.nonce, 'string')
    const answer = await socket.call('authenticate', { address: wallet.address, signature: await wallet.signMessage(nonce.result.nonce) })
    t.same(answer.result, { authenticated: true })
    const play = await socket.call('play', { script: 'CALLER_PUBLIC_KEY' })
    t.equal(play.result.output, pair.publicKey)
    socket.close()
  })

  t.test('the lowercase address works as well', async (t) => {
    const socket = await openSocket(url)
    const address = wallet.address.toLowerCase()
    const nonce = await socket.call('fetch_nonce', { address })
    t.equal(nonce.result.nonce.split('\n')[1], wallet.address, 'the sign-in message names the address in its EIP-55 form')
    const answer = await socket.call('authenticate', { address, signature: signPersonalMessage(nonce.result.nonce, pair.secretKey) })
    t.same(answer.result, { authenticated: true })
    socket.close()
  })

  t.test('a signature by another key: INVALID_CREDENTIALS, close 1008', async (t) => {
    const socket = await openSocket(url)
    const nonce = await socket.call('fetch_nonce', { address: wallet.address })
    const forged = signPersonalMessage(nonce.result.nonce, generateKeyPair().secretKey)
    const answer = await socket.call('authenticate', { address: wallet.address, signature: forged })
    t.equal(answer.error.data.code, 'INVALID_CREDENTIALS')
    t.same(await socket.closed, { code: 1008, reason: 'INVALID_CREDENTIALS' })
  })

  t.test('a nonce issued for the address does not authenticate the key form: NONCE_UNKNOWN', async (t) => {
    const socket = await openSocket(url)
    const nonce = await socket.call('fetch_nonce', { address: wallet.address })
    const answer = await socket.call('authenticate', { pubkey: pair.publicKey, signature: signPersonalMessage(nonce.result.nonce, pair.secretKey) })
    t.equal(answer.error.data.code, 'NONCE_UNKNOWN')
    t.equal((await socket.closed).code, 1008)
  })

  t.test('params: exactly one of pubkey or address, and a well-formed address', async (t) => {
    const socket = await openSocket(url)
    const both = await socket.call('fetch_nonce', { pubkey: pair.publicKey, address: wallet.address })
    t.match(both.error, { code: -32602, data: { code: 'INVALID_PARAMS', field: 'address' } })
    const neither = await socket.call('fetch_nonce', {})
    t.match(neither.error, { code: -32602, data: { code: 'INVALID_PARAMS', field: 'pubkey' } })
    for (const address of ['0x1234', wallet.address.slice(2), `${wallet.address}00`, 42]) {
      const bad = await socket.call('fetch_nonce', { address })
      t.match(bad.error, { code: -32602, message: /"address" must be an Ethereum address/, data: { code: 'INVALID_PARAMS', field: 'address' } }, String(address))
    }
    const badAuth = await socket.call('authenticate', { address: '0xzz', signature: '00'.repeat(65) })
    t.match(badAuth.error.data, { code: 'INVALID_PARAMS', field: 'address' })
    socket.close()
  })
})

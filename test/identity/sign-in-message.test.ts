import t from 'tap'
import { readFileSync } from 'node:fs'
import { computeAddress, getAddress } from 'ethers'
import { createSiweMessage, parseSiweMessage } from 'viem/siwe'
import {
  addressOfPublicKey,
  checksumAddress,
  formatSignInMessage,
  generateKeyPair,
  parseSignInMessage,
  type SignInFields,
} from '../../src/identity/index.js'

t.test('checksumAddress(address): EIP-55', async (t) => {
  // The examples EIP-55 itself lists.
  for (const address of [
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
    '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
    '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  ]) {
    t.equal(checksumAddress(address.toLowerCase()), address)
  }
})

t.test('addressOfPublicKey(key): the address ethers derives', async (t) => {
  for (let i = 0; i < 20; i++) {
    const { publicKey } = generateKeyPair()
    t.equal(addressOfPublicKey(publicKey), computeAddress(`0x${publicKey}`).toLowerCase())
  }
  t.throws(() => addressOfPublicKey(`02${'0'.repeat(63)}5`), { code: 'INVALID_PUBLIC_KEY' }, 'an x with no point on the curve')
})

t.test('formatSignInMessage / parseSignInMessage', async (t) => {
  const context = generateKeyPair().publicKey
  const fields: SignInFields = {
    domain: 'circle.example:8443',
    address: getAddress(computeAddress(`0x${generateKeyPair().publicKey}`)),
    context,
    uri: `wss://circle.example:8443/${context}`,
    nonce: 'a1b2c3d4e5f60718',
    issuedAt: '2025-01-02T03:04:05.678Z',
    expirationTime: '2025-01-02T03:09:05.678Z',
  }
  const text = formatSignInMessage(fields)

  t.test('is the EIP-4361 text another implementation builds from the same fields', async (t) => {
    t.equal(
      text,
      createSiweMessage({
        domain: fields.domain,
        address: fields.address as `0x${string}`,
        statement: `Sign in to the Circles context ${context}.`,
        uri: fields.uri,
        version: '1',
        chainId: 1,
        nonce: fields.nonce,
        issuedAt: new Date(fields.issuedAt),
        expirationTime: new Date(fields.expirationTime),
      }),
    )
    t.match(parseSiweMessage(text), { domain: fields.domain, address: fields.address, chainId: 1, version: '1', nonce: fields.nonce, uri: fields.uri })
  })

  t.test('parses back to its fields', async (t) => {
    t.same(parseSignInMessage(text), fields)
  })

  t.test('any other layout is not a sign-in message', async (t) => {
    for (const [what, other] of [
      ['an extra line', `${text}\nResources:`],
      ['CRLF line ends', text.replaceAll('\n', '\r\n')],
      ['a missing statement', text.replace(/\nSign in to[^\n]*\n/, '\n')],
      ['a renamed field', text.replace('Nonce:', 'Once:')],
      ['a bare string', 'xK3q9ZbLmN0pQrSt'],
    ] as const) {
      t.equal(parseSignInMessage(other), undefined, what)
    }
  })
})

t.test('the example in docs/protocol.md is laid out as the node lays messages out', async (t) => {
  const docs = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  const example = /### The sign-in message\n[\s\S]*?```text\n([\s\S]*?)\n```/.exec(docs)?.[1]
  const fields = parseSignInMessage(example ?? '')
  t.ok(fields, 'the example is there and parses')
  t.equal(formatSignInMessage(fields!), example)
  t.equal(fields!.address, checksumAddress(fields!.address.toLowerCase()), 'its address is in EIP-55 form')
  t.equal(fields!.nonce.length, 64)
  t.equal(Date.parse(fields!.expirationTime) - Date.parse(fields!.issuedAt), 300_000)
})

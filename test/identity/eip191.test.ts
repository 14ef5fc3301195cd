import t from 'tap'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import {
  generateKeyPair,
  keyPairFromSecret,
  personalMessageHash,
  recoverPersonalSigner,
  signPersonalMessage,
  verifyPersonalSignature,
} from '../../src/identity/index.js'

/** The Ethereum address of a public key: last 20 bytes of keccak256(uncompressed x‖y). */
function address(publicKey: string): string {
  const xy = secp256k1.Point.fromHex(publicKey).toBytes(false).subarray(1)
  return `0x${bytesToHex(keccak_256(xy).subarray(12))}`
}

// Published by web3.js in its documentation of web3.eth.accounts.sign('Some data', privateKey).
const WEB3 = {
  secretKey: '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318',
  message: 'Some data',
  messageHash: '1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655',
  signature:
    '0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c',
  address: '0x2c7536e3605d9c16a7a3d7b1898e529396a65c23',
}
// Published by viem in its signMessage documentation ('hello world', the well-known first dev account).
const VIEM = {
  message: 'hello world',
  signature:
    '0xa461f509887bd19e312c0c58467ce8ff8e300d3c1a90b608a760c5b80318eaf15fe57c96f9175d6cd4daad4663763baa7e78836e067d0163e9a2ccf2ff753f5b1b',
  address: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
}

t.test('personalMessageHash(message)', async (t) => {
  t.equal(bytesToHex(personalMessageHash(WEB3.message)), WEB3.messageHash, 'matches the web3.js messageHash')
  const multibyte = personalMessageHash('é')
  t.not(bytesToHex(multibyte), bytesToHex(personalMessageHash('e')), 'length prefix counts UTF-8 bytes')
})

t.test('verifyPersonalSignature(message, signature, pubkey)', async (t) => {
  t.test('accepts the web3.js published vector', async (t) => {
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    t.same(verifyPersonalSignature(WEB3.message, WEB3.signature, publicKey), { ok: true, publicKey })
    t.equal(address(publicKey), WEB3.address)
  })

  t.test('recovers the signer of the viem published vector', async (t) => {
    const r = recoverPersonalSigner(VIEM.message, VIEM.signature)
    t.ok(r.ok)
    if (r.ok) t.equal(address(r.publicKey), VIEM.address)
  })

  t.test('accepts v as 0/1 and 27/28, with or without 0x', async (t) => {
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    const body = WEB3.signature.slice(2, 130)
    t.ok(verifyPersonalSignature(WEB3.message, `${body}1c`, publicKey).ok, 'no 0x')
    t.ok(verifyPersonalSignature(WEB3.message, `0x${body}01`, publicKey).ok, 'v = 1')
    t.same(verifyPersonalSignature(WEB3.message, `0x${body}00`, publicKey), { ok: false, reason: 'mismatch' }, 'v = 0 recovers another key')
    t.same(verifyPersonalSignature(WEB3.message, `0x${body}02`, publicKey), { ok: false, reason: 'bad_v' })
    t.same(verifyPersonalSignature(WEB3.message, `0x${body}1d`, publicKey), { ok: false, reason: 'bad_v' })
  })

  t.test('rejects a signature made by another key', async (t) => {
    const other = generateKeyPair()
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    t.same(verifyPersonalSignature(WEB3.message, signPersonalMessage(WEB3.message, other.secretKey), publicKey), {
      ok: false,
      reason: 'mismatch',
    })
  })

  t.test('rejects a signature over another message', async (t) => {
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    t.same(verifyPersonalSignature('Some datA', WEB3.signature, publicKey), { ok: false, reason: 'mismatch' })
  })

  t.test('rejects the high-s twin of a valid signature', async (t) => {
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    const n = secp256k1.Point.CURVE().n
    const s = BigInt(`0x${WEB3.signature.slice(66, 130)}`)
    const highS = (n - s).toString(16).padStart(64, '0')
    // Flipping s flips the recovery bit: v 28 → 27 recovers the same key if high-s were allowed.
    const twin = `0x${WEB3.signature.slice(2, 66)}${highS}1b`
    t.same(verifyPersonalSignature(WEB3.message, twin, publicKey), { ok: false, reason: 'high_s' })
  })

  t.test('rejects malformed hex without throwing', async (t) => {
    const { publicKey } = keyPairFromSecret(WEB3.secretKey)
    for (const bad of ['', '0x', 'zz'.repeat(65), WEB3.signature.slice(0, 130), `${WEB3.signature}00`, `0x${'00'.repeat(64)}1b`]) {
      const r = verifyPersonalSignature(WEB3.message, bad, publicKey)
      t.equal(r.ok, false, JSON.stringify(bad))
    }
    t.same(verifyPersonalSignature(WEB3.message, `0x${'00'.repeat(64)}1b`, publicKey), { ok: false, reason: 'malformed' }, 'r = s = 0')
    t.same(verifyPersonalSignature('x', 5 as unknown as string, publicKey), { ok: false, reason: 'malformed' })
  })
})

t.test('signPersonalMessage(message, secretKey)', async (t) => {
  t.test('reproduces the web3.js published signature (RFC 6979 deterministic k)', async (t) => {
    t.equal(signPersonalMessage(WEB3.message, WEB3.secretKey), WEB3.signature)
    t.equal(signPersonalMessage(WEB3.message, `0x${WEB3.secretKey}`), WEB3.signature)
  })

  t.test('round-trips with a fresh key pair', async (t) => {
    const pair = generateKeyPair()
    const nonce = 'nonce with ünïcode ✓'
    t.same(verifyPersonalSignature(nonce, signPersonalMessage(nonce, pair.secretKey), pair.publicKey), { ok: true, publicKey: pair.publicKey })
  })
})

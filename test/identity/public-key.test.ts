import t from 'tap'
import { CirclesTypeError } from '../../src/errors/index.js'
import { createNonce, generateKeyPair, isCanonicalPublicKey, keyPairFromSecret, normalizePublicKey, parsePublicKey } from '../../src/identity/index.js'

const G_COMPRESSED = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'
const G_UNCOMPRESSED =
  '0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'

t.test('parsePublicKey(input)', async (t) => {
  t.test('normalises uncompressed, 0x-prefixed and uppercase keys to compressed lowercase', async (t) => {
    t.equal(parsePublicKey(G_UNCOMPRESSED), G_COMPRESSED)
    t.equal(parsePublicKey(`0x${G_COMPRESSED}`), G_COMPRESSED)
    t.equal(parsePublicKey(G_COMPRESSED.toUpperCase()), G_COMPRESSED)
    t.equal(parsePublicKey(`0X${G_UNCOMPRESSED.toUpperCase()}`), G_COMPRESSED)
  })

  t.test('throws INVALID_PUBLIC_KEY (a TypeError) for anything else', async (t) => {
    const bad: unknown[] = [
      undefined,
      42,
      '',
      G_COMPRESSED.slice(2),
      `05${G_COMPRESSED.slice(2)}`,
      `02${'ff'.repeat(32)}`, // x beyond the field: not on the curve
      `04${G_UNCOMPRESSED.slice(2, 66)}${'00'.repeat(32)}`, // wrong y
      ` ${G_COMPRESSED}`,
      `${G_COMPRESSED}00`,
    ]
    for (const input of bad) {
      t.throws(() => parsePublicKey(input), { code: 'INVALID_PUBLIC_KEY', rpcCode: -32602 }, JSON.stringify(input))
      try {
        parsePublicKey(input)
      } catch (error) {
        t.type(error, CirclesTypeError)
        t.type(error, TypeError)
      }
    }
  })
})

t.test('isCanonicalPublicKey(value)', async (t) => {
  t.ok(isCanonicalPublicKey(G_COMPRESSED))
  t.notOk(isCanonicalPublicKey(G_COMPRESSED.toUpperCase()))
  t.notOk(isCanonicalPublicKey(G_UNCOMPRESSED))
  t.notOk(isCanonicalPublicKey(null))
})

t.test('generateKeyPair() / keyPairFromSecret(hex)', async (t) => {
  const a = generateKeyPair()
  const b = generateKeyPair()
  t.not(a.secretKey, b.secretKey)
  t.ok(isCanonicalPublicKey(a.publicKey))
  t.same(keyPairFromSecret(a.secretKey), a)
  t.same(keyPairFromSecret(`0x${a.secretKey.toUpperCase()}`), a)
  t.throws(() => keyPairFromSecret('00'.repeat(32)), { code: 'KEY_FILE_INVALID' }, 'zero is not a valid secret')
  t.throws(() => keyPairFromSecret('abc'), { code: 'KEY_FILE_INVALID' })
})

t.test('createNonce()', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 100; i++) {
    const nonce = createNonce()
    t.match(nonce, /^[0-9a-f]{64}$/, '32 bytes, hex: letters and digits only, as EIP-4361 requires')
    seen.add(nonce)
  }
  t.equal(seen.size, 100, 'nonces do not repeat')
})

/** An x below the field prime with no point on the curve (x³ + 7 is not a square). */
function offCurveX(): string {
  for (let x = 5n; ; x++) {
    const hex = `02${x.toString(16).padStart(64, '0')}`
    try {
      parsePublicKey(hex)
    } catch {
      return hex
    }
  }
}

t.test('normalizePublicKey(input) — the boundary fast path', async (t) => {
  t.test('normalises exactly as parsePublicKey does for valid keys', async (t) => {
    for (const input of [G_COMPRESSED, G_UNCOMPRESSED, `0x${G_COMPRESSED}`, G_UNCOMPRESSED.toUpperCase(), generateKeyPair().publicKey]) {
      t.equal(normalizePublicKey(input), parsePublicKey(input), input.slice(0, 12))
    }
  })

  t.test('refuses bad syntax, x beyond the field, and uncompressed points off the curve', async (t) => {
    for (const input of [7, '', G_COMPRESSED.slice(2), `02${'ff'.repeat(32)}`, `04${G_UNCOMPRESSED.slice(2, 66)}${'00'.repeat(32)}`]) {
      t.throws(() => normalizePublicKey(input), { code: 'INVALID_PUBLIC_KEY' }, String(input).slice(0, 12))
    }
  })

  t.test('leaves the square root of a compressed key to where the curve math runs anyway', async (t) => {
    const bad = offCurveX()
    t.throws(() => parsePublicKey(bad), { code: 'INVALID_PUBLIC_KEY' })
    t.equal(normalizePublicKey(bad), bad, 'accepted at the boundary; fetch_nonce refuses it when it derives the address')
  })
})

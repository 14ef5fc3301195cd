import t from 'tap'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, loadOrCreateKeyFile, readKeyFile, resolveKeyArgument } from '../../src/identity/index.js'

t.test('loadOrCreateKeyFile(path)', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'nested', 'circle.key')
  const first = await loadOrCreateKeyFile(path)
  t.equal(first.created, true)
  t.equal((await stat(path)).mode & 0o777, 0o600, 'written with mode 0600')
  const again = await loadOrCreateKeyFile(path)
  t.same(again, { keyPair: first.keyPair, created: false }, 'the same key comes back')
  const stored = JSON.parse(await readFile(path, 'utf8'))
  t.same(stored, { public_key: first.keyPair.publicKey, secret_key: first.keyPair.secretKey })
})

t.test('readKeyFile(path)', async (t) => {
  const dir = t.testdir()
  const pair = generateKeyPair()

  t.test('reads a bare hex secret', async (t) => {
    const path = join(dir, 'bare.key')
    await writeFile(path, `${pair.secretKey}\n`, { mode: 0o600 })
    t.same(await readKeyFile(path), pair)
  })

  t.test('refuses a file readable by others', async (t) => {
    const path = join(dir, 'open.key')
    await writeFile(path, pair.secretKey, { mode: 0o600 })
    await chmod(path, 0o644)
    await t.rejects(readKeyFile(path), { code: 'KEY_FILE_INVALID', message: /chmod 600/ })
  })

  t.test('refuses a public key that does not match the secret', async (t) => {
    const path = join(dir, 'mismatch.key')
    await writeFile(path, JSON.stringify({ public_key: generateKeyPair().publicKey, secret_key: pair.secretKey }), { mode: 0o600 })
    await t.rejects(readKeyFile(path), { code: 'KEY_FILE_INVALID', message: /does not belong/ })
  })

  t.test('refuses garbage and missing files with KEY_FILE_INVALID', async (t) => {
    const path = join(dir, 'garbage.key')
    await writeFile(path, 'hello', { mode: 0o600 })
    await t.rejects(readKeyFile(path), { code: 'KEY_FILE_INVALID' })
    await writeFile(path, '{"secret_key": 5}', { mode: 0o600 })
    await t.rejects(readKeyFile(path), { code: 'KEY_FILE_INVALID' })
    await t.rejects(readKeyFile(join(dir, 'missing.key')), { code: 'KEY_FILE_INVALID' })
  })
})

t.test('resolveKeyArgument(value)', async (t) => {
  const pair = generateKeyPair()
  t.same(await resolveKeyArgument(pair.secretKey), pair)
  t.same(await resolveKeyArgument(`0x${pair.secretKey}`), pair)
  const path = join(t.testdir(), 'k.key')
  await writeFile(path, JSON.stringify({ secret_key: pair.secretKey }), { mode: 0o600 })
  t.same(await resolveKeyArgument(path), pair)
})

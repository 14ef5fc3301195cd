import t from 'tap'
import { generateKeyPair } from '../../src/identity/index.js'
import { DEFAULT_POLICY, admitsAnonymous, canCall, canRun, canSubscribe, canWrite, parsePolicy, readPolicy, writePolicy } from '../../src/policy/index.js'

const owner = generateKeyPair().publicKey
const friend = generateKeyPair().publicKey
const stranger = generateKeyPair().publicKey

t.test('parsePolicy(value)', async (t) => {
  t.same(parsePolicy(undefined), DEFAULT_POLICY)
  t.same(parsePolicy({}), { run: 'authenticated', write: 'owner', call: 'owner', subscribe: 'authenticated' })
  t.same(parsePolicy({ run: 'anonymous' }), { run: 'anonymous', write: 'owner', call: 'owner', subscribe: 'anonymous' }, 'subscribe follows run when absent')
  t.same(
    parsePolicy({ run: [friend.toUpperCase()], write: [friend], call: [friend.toUpperCase()], subscribe: [stranger.toUpperCase()] }),
    { run: [friend], write: [friend], call: [friend], subscribe: [stranger] },
    'keys are normalised',
  )
  t.same(parsePolicy({ call: 'anonymous' }), { run: 'authenticated', write: 'owner', call: 'anonymous', subscribe: 'authenticated' }, 'call takes the forms of run')
  t.same(parsePolicy({ run: 'anonymous', subscribe: 'owner' }), { run: 'anonymous', write: 'owner', call: 'owner', subscribe: 'owner' }, 'subscribe takes the forms of run')
  t.same(parsePolicy(parsePolicy({ run: 'owner' })), parsePolicy({ run: 'owner' }), 'a parsed policy parses to itself (as config/policy.json is read back)')
  t.throws(() => parsePolicy({ subscribe: 'everyone' }), { code: 'CONFIG_INVALID', message: /policy\.subscribe/ })
  t.throws(() => parsePolicy({ subscribe: ['nope'] }), { code: 'CONFIG_INVALID', message: /policy\.subscribe\[0\]/ })
  t.throws(() => parsePolicy({ read: 'x' }), { code: 'CONFIG_INVALID', message: 'policy.read is not a policy setting (run, write, call, subscribe)' })
  t.throws(() => parsePolicy({ call: 'everyone' }), { code: 'CONFIG_INVALID', message: /policy\.call/ })
  t.throws(() => parsePolicy({ call: ['nope'] }), { code: 'CONFIG_INVALID', message: /policy\.call\[0\]/ })
  t.throws(() => parsePolicy({ run: 'everyone' }, 'circles[1].policy'), { code: 'CONFIG_INVALID', message: /circles\[1\]\.policy\.run/ })
  t.throws(() => parsePolicy({ write: 'anonymous' }), { code: 'CONFIG_INVALID', message: /policy\.write/ })
  t.throws(() => parsePolicy({ read: 'x' }), { code: 'CONFIG_INVALID', message: /policy\.read/ })
  t.throws(() => parsePolicy({ run: ['nope'] }), { code: 'CONFIG_INVALID', message: /policy\.run\[0\]/ })
  t.throws(() => parsePolicy([]), { code: 'CONFIG_INVALID' })
})

t.test('canRun(policy, caller, owner)', async (t) => {
  const table: [unknown, string, boolean][] = [
    [{ run: 'anonymous' }, '', true],
    [{ run: 'anonymous' }, stranger, true],
    [{ run: 'authenticated' }, '', false],
    [{ run: 'authenticated' }, stranger, true],
    [{ run: 'owner' }, stranger, false],
    [{ run: 'owner' }, owner, true],
    [{ run: [friend] }, friend, true],
    [{ run: [friend] }, stranger, false],
    [{ run: [friend] }, owner, true],
    [{ run: [friend] }, '', false],
  ]
  for (const [raw, caller, expected] of table) {
    t.equal(canRun(parsePolicy(raw), caller, owner), expected, `${JSON.stringify(raw)} caller=${caller === owner ? 'owner' : caller === friend ? 'friend' : caller === '' ? 'anonymous' : 'stranger'}`)
  }
  t.ok(admitsAnonymous(parsePolicy({ run: 'anonymous' })))
  t.notOk(admitsAnonymous(DEFAULT_POLICY))
})

t.test('canWrite(policy, caller, owner)', async (t) => {
  t.ok(canWrite(DEFAULT_POLICY, owner, owner), 'the owner writes by default')
  t.notOk(canWrite(DEFAULT_POLICY, stranger, owner), 'nobody else does')
  t.notOk(canWrite(parsePolicy({ run: 'anonymous', write: 'authenticated' }), '', owner), 'anonymous callers never write')
  t.ok(canWrite(parsePolicy({ write: 'authenticated' }), stranger, owner))
  t.ok(canWrite(parsePolicy({ write: [friend] }), friend, owner))
  t.notOk(canWrite(parsePolicy({ write: [friend] }), stranger, owner))
})

t.test('canCall(policy, caller, owner): who may run scripts that call out, as the context', async (t) => {
  t.ok(canCall(DEFAULT_POLICY, owner, owner), 'the owner, by default')
  t.notOk(canCall(DEFAULT_POLICY, stranger, owner), 'nobody else: running scripts does not lend the context its authority')
  t.notOk(canCall(parsePolicy({ run: 'anonymous', call: 'authenticated' }), '', owner), 'an anonymous caller is not authenticated')
  t.ok(canCall(parsePolicy({ call: 'anonymous' }), '', owner))
  t.ok(canCall(parsePolicy({ call: [friend] }), friend, owner))
  t.notOk(canCall(parsePolicy({ call: [friend] }), stranger, owner))
  t.notOk(canCall(parsePolicy({ run: 'authenticated', call: 'owner' }), friend, owner), 'independent of run')
})

t.test('canSubscribe(policy, caller, owner): who may watch the context', async (t) => {
  t.ok(canSubscribe(DEFAULT_POLICY, stranger, owner), 'any authenticated caller, by default (as run)')
  t.notOk(canSubscribe(DEFAULT_POLICY, '', owner), 'not an anonymous one')
  t.ok(canSubscribe(parsePolicy({ run: 'anonymous' }), '', owner), 'follows run when not given')
  t.notOk(canSubscribe(parsePolicy({ run: 'anonymous', subscribe: [friend] }), stranger, owner), 'stricter than run')
  t.ok(canSubscribe(parsePolicy({ run: 'anonymous', subscribe: [friend] }), friend, owner))
  t.ok(canSubscribe(parsePolicy({ subscribe: 'owner' }), owner, owner), 'the owner always')
})

t.test('readPolicy / writePolicy', async (t) => {
  const root = t.testdir()
  t.same(await readPolicy(root), DEFAULT_POLICY, 'default when none is stored')
  const policy = parsePolicy({ run: 'anonymous', write: [friend] })
  await writePolicy(root, policy)
  t.same(await readPolicy(root), policy)
})

/**
 * The escrow example (examples/escrow) end to end, as its README runs it — but with the buyer and
 * the seller on two nodes joined through a private Redis, so that every check of the other
 * side's state is a call across the nodes.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '../../src/identity/index.js'
import { metric } from '../helpers/cli-node.js'
import { launchNode, ROOT } from '../helpers/launched.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { testPrefix, testRedis } from '../helpers/redis-server.js'

const example = (file: string) => readFileSync(join(ROOT, 'examples', 'escrow', file), 'utf8')
const advance = example('advance.js')
const prefix = testPrefix('escrow')
const { url: redisUrl } = await testRedis(t, prefix)
const args = ['--redis-url', redisUrl, '--cluster-secret', 'escrow-example-test-secret-0123456789', '--redis-prefix', prefix]
const pairs = { buyer: generateKeyPair(), seller: generateKeyPair() }
const onPortZero = (file: string) => (JSON.parse(example(file)) as Record<string, unknown>[]).map((circle) => ({ ...circle, port: 0 }))
const buyerNode = await launchNode(t, { circles: onPortZero('node-buyer.json'), args, keys: { buyer: pairs.buyer } })
const sellerNode = await launchNode(t, { circles: onPortZero('node-seller.json'), args, keys: { seller: pairs.seller } })
const BUYER = buyerNode.circles['buyer']!.publicKey
const SELLER = sellerNode.circles['seller']!.publicKey
t.equal(BUYER, pairs.buyer.publicKey)
t.equal(SELLER, pairs.seller.publicKey)

/** A socket on a party's context, signed in with the party's own key (its owner). */
async function owner(url: string, pair: (typeof pairs)['buyer']): Promise<RawSocket> {
  const socket = await openSocket(url)
  await authenticate(socket, pair)
  t.teardown(() => socket.close())
  return socket
}
// Signed in inside the tests: a socket opened at the top level would not keep the test running.
let buyer!: RawSocket
let seller!: RawSocket
t.before(async () => {
  buyer = await owner(buyerNode.circles['buyer']!.url, pairs.buyer)
  seller = await owner(sellerNode.circles['seller']!.url, pairs.seller)
})
const play = async (socket: RawSocket, script: string): Promise<unknown> => {
  const answer = await socket.call('play', { script }, undefined, 60_000)
  if (answer.error !== undefined) throw new Error(`play: ${JSON.stringify(answer.error)}`)
  return answer.result.result
}

t.test('offer, ship, release, get paid: each step checks the other side across the nodes', async (t) => {
  await play(buyer, `save_data('deal', { role: 'buyer', seller: '${SELLER}', amount: 10, state: 'funded' })`)
  t.same(await play(buyer, advance), { state: 'funded', waiting: 'the other side has no matching deal' }, 'the buyer waits for the seller’s deal')
  await play(seller, `save_data('deal', { role: 'seller', buyer: '${BUYER}', amount: 10, state: 'open' })`)
  t.same(await play(buyer, advance), { state: 'funded', theirs: 'open' }, 'nothing to release before the seller ships')
  t.same(await play(seller, advance), { state: 'shipped', theirs: 'funded' }, 'the seller ships once the buyer’s deal is funded')
  t.same(await play(buyer, advance), { state: 'released', theirs: 'shipped' }, 'the buyer releases once the seller shipped')
  t.same(await play(seller, advance), { state: 'paid', theirs: 'released' }, 'the seller is paid once the buyer released')
  t.same(await play(seller, advance), { state: 'paid', theirs: 'released' }, 'a step run again changes nothing')
  t.same(await play(buyer, advance), { state: 'released', theirs: 'paid' }, 'nor does the buyer’s')
  t.ok((await metric(buyerNode.admin, 'circles_cross_node_tasks_sent_total')) >= 4, 'the buyer’s checks went to the other node')
  t.ok((await metric(sellerNode.admin, 'circles_cross_node_tasks_sent_total')) >= 3, 'and the seller’s')
})

t.test('a deal that names someone else, or another amount, does not move', async (t) => {
  const stranger = generateKeyPair()
  await play(seller, `save_data('deal', { role: 'seller', buyer: '${stranger.publicKey}', amount: 10, state: 'open' })`)
  await play(buyer, `save_data('deal', { role: 'buyer', seller: '${SELLER}', amount: 10, state: 'funded' })`)
  t.same(await play(buyer, advance), { state: 'funded', waiting: 'the other side has no matching deal' })
  await play(seller, `save_data('deal', { role: 'seller', buyer: '${BUYER}', amount: 99, state: 'open' })`)
  t.same(await play(seller, advance), { state: 'open', waiting: 'the other side has no matching deal' })
})

t.test('each side writes only its own state: the other’s write rule refuses a call that writes', async (t) => {
  const answer = await buyer.call('play', { script: `call('${SELLER}', "save_data('deal', { state: 'paid' })")` })
  t.equal(answer.error?.data?.code, 'FORBIDDEN')
})

t.test('the playground offers advance.js among its examples', async (t) => {
  const app = readFileSync(join(ROOT, 'playground', 'app.js'), 'utf8')
  const code = advance.split('\n').filter((line) => line !== '' && !line.startsWith('//'))
  t.ok(code.length > 10)
  for (const line of code) t.ok(app.includes(JSON.stringify(`${line}\n`)), `app.js has: ${line.trim()}`)
})

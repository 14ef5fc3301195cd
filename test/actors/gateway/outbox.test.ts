/**
 * Outbox over a real WebSocket pair: messages go out in order, at most `highWater` bytes in the
 * WebSocket layer with the rest waiting in the outbox (reported backed up, then not), every byte
 * charged to the send budget and credited once written; a close waits for what is queued, a
 * dropping close does not; a socket cut by the budget while charging sends nothing more.
 */
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { SendBudget } from '../../../src/limits/index.js'
import { Outbox } from '../../../src/actors/gateway/outbox.js'

async function pair(t: Test): Promise<{ server: WebSocket; client: WebSocket; received: string[]; closed: Promise<{ code: number; reason: string }>; until(n: number): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve))
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`)
  const server = await accepted
  await new Promise<void>((resolve) => (client.readyState === client.OPEN ? resolve() : client.once('open', () => resolve())))
  t.teardown(() => {
    client.terminate()
    wss.close()
  })
  const received: string[] = []
  const waiters: { n: number; resolve: () => void }[] = []
  client.on('message', (data) => {
    received.push(data.toString())
    for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => client.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  const until = (n: number) => (received.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })))
  return { server, client, received, closed, until }
}

function budget(perSocket = 1 << 20) {
  return new SendBudget({ perSocket, perAddress: 1 << 20, perNode: 1 << 20, appliesTo: () => true })
}

t.test('in order; queued past highWater; charged and credited', async (t) => {
  const { server, received, until } = await pair(t)
  const b = budget()
  const events: string[] = []
  let flushed = 0
  const allFlushed = new Promise<void>((resolve) => {
    const outbox = new Outbox(server, b.open('203.0.113.1', () => t.fail('not cut')), 10, {
      onFlushed: () => {
        if (++flushed === 5) resolve()
      },
      onBackedUp: (backedUp) => events.push(`backedUp ${backedUp}`),
    })
    for (let i = 0; i < 5; i++) outbox.push(`message ${i} é`)
    t.equal(outbox.bytes, 5 * 12, 'every byte counted: in the socket layer and waiting')
    t.equal(b.bytes, 5 * 12, 'and charged to the budget')
    t.same(events, ['backedUp true'], 'the second message waits: backed up once')
    t.equal(outbox.accepting, true)
  })
  await allFlushed
  await until(5)
  t.same(received, [0, 1, 2, 3, 4].map((i) => `message ${i} é`))
  t.same(events, ['backedUp true', 'backedUp false'])
  t.equal(b.bytes, 0, 'all credited once written')
})

t.test('close waits for what is queued; nothing is taken after it', async (t) => {
  const { server, received, closed } = await pair(t)
  const b = budget()
  const outbox = new Outbox(server, b.open('203.0.113.1', () => {}), 1, { onFlushed: () => {}, onBackedUp: () => {} })
  outbox.push('a')
  outbox.push('b')
  outbox.push('c')
  outbox.close(4000, 'bye')
  t.equal(outbox.accepting, false)
  outbox.push('after close')
  t.same(await closed, { code: 4000, reason: 'bye' })
  t.same(received, ['a', 'b', 'c'])
  t.equal(b.bytes, 0)
})

t.test('a dropping close sends what is in the socket layer only, and credits the rest', async (t) => {
  const { server, received, closed } = await pair(t)
  const b = budget()
  const backed: boolean[] = []
  const outbox = new Outbox(server, b.open('203.0.113.1', () => {}), 1, { onFlushed: () => {}, onBackedUp: (x) => backed.push(x) })
  outbox.push('first')
  outbox.push('queued 1')
  outbox.push('queued 2')
  outbox.close(4001, 'cut', true)
  t.equal(b.bytes, 5, 'only the message in the socket layer is still charged')
  t.same(backed, [true, false])
  t.same(await closed, { code: 4001, reason: 'cut' })
  t.same(received, ['first'])
})

t.test('a message whose charge cuts the socket is not sent', async (t) => {
  const { server, received, closed } = await pair(t)
  const b = budget(8)
  const cuts: string[] = []
  let outbox: Outbox | undefined = undefined
  const account = b.open('203.0.113.1', (name, final) => {
    cuts.push(`${name} ${final}`)
    outbox!.close(4002, 'over budget', true)
  })
  outbox = new Outbox(server, account, 1 << 20, { onFlushed: () => {}, onBackedUp: () => {} })
  outbox.push('1234')
  outbox.push('56789')
  t.same(cuts, ['socket false'])
  t.same(await closed, { code: 4002, reason: 'over budget' })
  t.same(received, ['1234'])
})

import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { generateKeyPair, type KeyPair } from '../../src/identity/index.js'
import { authenticate, openSocket, type RawSocket } from '../helpers/raw-socket.js'
import { captureLog } from '../helpers/log-capture.js'
import { launchNode } from '../helpers/launched.js'
import { startNode } from '../helpers/node.js'
import { waitUntil } from '../helpers/wait.js'

/** A socket authenticated as `pair` (anonymous without one). */
async function peer(url: string, pair?: KeyPair, localAddress?: string): Promise<RawSocket> {
  const socket = await openSocket(url, localAddress === undefined ? {} : { localAddress })
  if (pair !== undefined) await authenticate(socket, pair)
  return socket
}

/** The result of a request, failing the test with the error answer otherwise. */
async function ok(socket: RawSocket, method: string, params: unknown): Promise<any> {
  const answer = await socket.call(method, params)
  if (answer.error !== undefined) throw new Error(`${method}: ${JSON.stringify(answer.error)}`)
  return answer.result
}

t.test('changes: 1,000 writes from 10 writers arrive in order, with consecutive seq', async (t) => {
  const { circle, url, admin } = await startNode(t)
  const watcher = await peer(url, circle)
  const subscribed = await ok(watcher, 'subscribe', { prefix: 'w' })
  t.match(subscribed, { subscription: 's1', epoch: /^[0-9a-f]{16}$/, seq: 0 })
  const writers = await Promise.all(Array.from({ length: 10 }, () => peer(url, circle)))
  await Promise.all(
    writers.map(async (writer, w) => {
      for (let n = 0; n < 100; n++) await ok(writer, 'play', { script: `save_data("w${w}/${n}", { w: ${w}, n: ${n} })` })
    }),
  )
  const seen: { w: number; n: number }[] = []
  for (let seq = 1; seq <= 1000; seq++) {
    const message = await watcher.next()
    t.equal(message.params.seq, seq, 'seq counts the context changes one by one')
    if (message.params.seq !== seq) break
    t.match(message, { jsonrpc: '2.0', method: 'changed', params: { subscription: 's1', epoch: subscribed.epoch, op: 'save' } })
    t.equal(message.params.name, `w${message.params.value.w}/${message.params.value.n}`)
    seen.push(message.params.value)
  }
  for (let w = 0; w < 10; w++) {
    t.same(
      seen.filter((v) => v.w === w).map((v) => v.n),
      Array.from({ length: 100 }, (_, n) => n),
      `writer ${w}'s writes in the order they ran`,
    )
  }
  t.match(await fetch(`${admin}/metrics`).then((r) => r.text()), /^circles_notifications_total 1000$/m)
  for (const socket of [watcher, ...writers]) socket.close()
})

t.test('filters, values and events', async (t) => {
  const { circle, url, node } = await startNode(t)
  const writer = await peer(url, circle)
  const posts = await peer(url, circle)
  const chat = await peer(url, circle)
  const everything = await peer(url, circle)
  const { epoch } = await ok(posts, 'subscribe', { prefix: 'posts/' })
  await ok(chat, 'subscribe', { topics: ['chat/', 'presence'] })
  await ok(everything, 'subscribe', {})

  await t.test('writes outside the prefix are not sent; one run\'s notices come in its order', async (t) => {
    await ok(writer, 'play', {
      script: 'save_data("other/1", 1); save_data("posts/a", { text: "hi" }); save_data("postsx", 2); delete_data("posts/a"); delete_data("posts/none"); emit("chat/room", 1)',
    })
    t.same((await posts.next()).params, { subscription: 's1', epoch, seq: 2, name: 'posts/a', op: 'save', value: { text: 'hi' } })
    t.same((await posts.next()).params, { subscription: 's1', epoch, seq: 4, name: 'posts/a', op: 'delete' })
  })

  await t.test('everything: changes and events, the delete of nothing left out', async (t) => {
    const got: string[] = []
    for (let i = 0; i < 5; i++) {
      const { method, params } = await everything.next()
      got.push(`${params.seq} ${method} ${params.name ?? params.topic}`)
    }
    t.same(got, ['1 changed other/1', '2 changed posts/a', '3 changed postsx', '4 changed posts/a', '5 event chat/room'])
    await ok(writer, 'play', { script: 'save_data("posts/b", "second")' })
  })

  await t.test('emit reaches the subscribers of its topic, names its sender, and stores nothing', async (t) => {
    const alice = generateKeyPair()
    const sender = await peer(url, alice)
    await ok(sender, 'play', { script: 'emit("presence/alice", { online: true }); emit("typing", 1); emit("chat/room", "hello")' })
    const first = await chat.next()
    t.same(first, {
      jsonrpc: '2.0',
      method: 'event',
      params: { subscription: 's1', epoch: first.params.epoch, seq: 5, topic: 'chat/room', value: 1, caller: circle.publicKey },
    })
    t.match((await chat.next()).params, { seq: 7, topic: 'presence/alice', value: { online: true }, caller: alice.publicKey })
    t.match((await chat.next()).params, { seq: 9, topic: 'chat/room', value: 'hello', caller: alice.publicKey })
    const stored = await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'list_data()' })
    t.same(stored.result, ['other/1', 'posts/b', 'postsx'], 'no document was written by emit')
    t.match((await posts.next()).params, { seq: 6, name: 'posts/b', value: 'second' }, 'prefix subscribers get no events')
    sender.close()
  })

  await t.test('a value over the limit is left out: truncated, read the document', async (t) => {
    await ok(writer, 'play', { script: 'save_data("posts/big", "x".repeat(70000)); save_data("posts/edge", "y".repeat(65534))' })
    t.same((await posts.next()).params, { subscription: 's1', epoch, seq: 10, name: 'posts/big', op: 'save', truncated: true })
    t.equal((await posts.next()).params.value, 'y'.repeat(65534), 'a value of exactly 65,536 bytes of JSON is carried')
  })

  await t.test('emit: budget and arguments are checked, errors can be caught', async (t) => {
    const result = await ok(writer, 'play', {
      script: `const codes = []
        for (const f of [() => emit(""), () => emit(7), () => emit("t", () => 1), () => emit("t", "x".repeat(70000))]) { try { f(); codes.push("ok") } catch (e) { codes.push(e.code) } }
        let sent = 0; try { for (;;) { emit("spam", sent); sent++ } } catch (e) { codes.push(e.code, sent) }
        codes`,
    })
    t.same(result.result, ['INVALID_NAME', 'INVALID_NAME', 'INVALID_DOCUMENT', 'QUOTA_EXCEEDED', 'QUOTA_EXCEEDED', 100])
    const bytes = await ok(writer, 'play', { script: 'let n = 0; try { for (;;) { emit("b", "x".repeat(60000)); n++ } } catch (e) { [e.code, n] }' })
    t.same(bytes.result, ['QUOTA_EXCEEDED', 4], '256 KiB of events per run')
  })

  for (const socket of [writer, posts, chat, everything]) socket.close()
})

t.test('a failed run whose writes committed is notified, after its answer', async (t) => {
  const { circle, url } = await startNode(t)
  const watcher = await peer(url, circle)
  await ok(watcher, 'subscribe', {})
  const writer = await peer(url, circle)
  const answer = await writer.call('play', { script: 'save_data("a", 1); emit("t", 2); throw new Error("late")' })
  t.match(answer.error, { data: { code: 'SCRIPT_ERROR' } })
  t.match((await watcher.next()).params, { seq: 1, name: 'a', value: 1 })
  t.match((await watcher.next()).params, { seq: 2, topic: 't', value: 2 })
  watcher.close()
  writer.close()
})

t.test('who may watch: the subscribe policy key', async (t) => {
  const alice = generateKeyPair()
  const bob = generateKeyPair()
  const { circle, url, node } = await startNode(t, { policy: { run: 'anonymous', subscribe: [alice.publicKey, bob.publicKey] } })

  await t.test('a refused subscriber gets FORBIDDEN; an anonymous one AUTH_REQUIRED', async (t) => {
    const mallory = await peer(url, generateKeyPair())
    t.match(await mallory.call('subscribe', {}), { error: { code: -32006, data: { code: 'FORBIDDEN' } } })
    const anonymous = await peer(url)
    t.match(await anonymous.call('subscribe', {}), { error: { code: -32001, data: { code: 'AUTH_REQUIRED' } } })
    t.match(await anonymous.call('play', { script: '1' }), { result: { output: '1' } }, 'run stays open to anyone')
    mallory.close()
    anonymous.close()
  })

  await t.test('a policy change ends the subscriptions it no longer admits, at once', async (t) => {
    const aliceSocket = await peer(url, alice)
    const bobSocket = await peer(url, bob)
    const owner = await peer(url, circle)
    await ok(aliceSocket, 'subscribe', { prefix: '' })
    await ok(bobSocket, 'subscribe', {})
    await ok(owner, 'subscribe', {})
    await node.peers.spawnPeer({ pubkey: circle.publicKey, policy: { run: 'anonymous', subscribe: [bob.publicKey] } })
    t.same(await aliceSocket.next(), {
      jsonrpc: '2.0',
      method: 'subscription_ended',
      params: { subscription: 's1', code: 'FORBIDDEN', message: "The circle's policy does not let this caller subscribe" },
    })
    t.equal(node.peers.subscribersOf(circle.publicKey), 2)
    await ok(owner, 'play', { script: 'save_data("after", 1)' })
    t.match((await bobSocket.next()).params, { name: 'after' }, 'bob still watches')
    t.match((await owner.next()).params, { name: 'after' }, 'the owner always may')
    t.match(await aliceSocket.call('subscribe', {}), { error: { data: { code: 'FORBIDDEN' } } })
    t.same(await aliceSocket.call('unsubscribe', { subscription: 's1' }), { jsonrpc: '2.0', id: 5, result: { unsubscribed: false } }, 'already ended')
    for (const socket of [aliceSocket, bobSocket, owner]) socket.close()
  })

  await t.test('without the key, subscribe follows run', async (t) => {
    await node.peers.spawnPeer({ pubkey: circle.publicKey, policy: { run: 'anonymous' } })
    const anonymous = await peer(url)
    t.match(await anonymous.call('subscribe', {}), { result: { subscription: 's1' } })
    anonymous.close()
  })
})

t.test('no silent gaps: resume from after, or RESYNC_REQUIRED', async (t) => {
  const { circle, url } = await startNode(t, { live: { log: { maxEntries: 5 } } })
  const writer = await peer(url, circle)
  const write = (script: string) => ok(writer, 'play', { script })

  await t.test('resume replays exactly what was missed, then goes on live', async (t) => {
    const first = await peer(url, circle)
    const start = await ok(first, 'subscribe', { prefix: 'p/' })
    await write('save_data("p/1", 1); save_data("q/1", 1)')
    t.match((await first.next()).params, { seq: 1, name: 'p/1' })
    first.close()
    await first.closed
    await write('save_data("p/2", 2); emit("p/not-a-change", 0); save_data("q/2", 2); delete_data("p/1")')
    const again = await peer(url, circle)
    const resumed = await again.call('subscribe', { prefix: 'p/', after: { epoch: start.epoch, seq: 1 } })
    t.same(resumed.result, { subscription: 's1', epoch: start.epoch, seq: 6 })
    t.match((await again.next()).params, { seq: 3, name: 'p/2', op: 'save' })
    t.match((await again.next()).params, { seq: 6, name: 'p/1', op: 'delete' })
    await write('save_data("p/3", 3)')
    t.match((await again.next()).params, { seq: 7, name: 'p/3' }, 'then live, nothing twice')
    again.close()
  })

  await t.test('past the log (5 entries here): RESYNC_REQUIRED with where to start again', async (t) => {
    const socket = await peer(url, circle)
    const now = await ok(socket, 'subscribe', {})
    const refused = await socket.call('subscribe', { after: { epoch: now.epoch, seq: 1 } })
    t.same(refused.error, {
      code: -32060,
      message: 'Notifications since that point are no longer known: read again, then subscribe from data.epoch and data.seq',
      data: { code: 'RESYNC_REQUIRED', epoch: now.epoch, seq: 7 },
    })
    t.match(await socket.call('subscribe', { after: { epoch: now.epoch, seq: 2 } }), { result: { seq: 7 } }, 'seq 3 on is still kept')
    const replayed: number[] = []
    for (let i = 0; i < 5; i++) replayed.push((await socket.next()).params.seq)
    t.same(replayed, [3, 4, 5, 6, 7])
    t.match(await socket.call('subscribe', { after: { epoch: 'ab', seq: 0 } }), { error: { data: { code: 'RESYNC_REQUIRED', epoch: now.epoch, seq: 7 } } }, 'another epoch')
    t.match(await socket.call('subscribe', { after: { epoch: now.epoch, seq: 8 } }), { error: { data: { code: 'RESYNC_REQUIRED' } } }, 'a seq never reached')
    socket.close()
  })

  writer.close()
})

t.test('a watched context is not passivated; once nobody watches, it is, and its log with it', async (t) => {
  const { url, node } = await startNode(t, { peers: { passivateAfterMs: 100 } })
  {
    const key = generateKeyPair()
    await node.peers.spawnPeer({ pubkey: key.publicKey, policy: { run: 'anonymous' } })
    const other = generateKeyPair()
    await node.peers.spawnPeer({ pubkey: other.publicKey })
    const watcher = await peer(`${url}${key.publicKey}`)
    const start = await ok(watcher, 'subscribe', {})
    t.equal(node.peers.stateOf(key.publicKey), 'idle', 'subscribing activated the context')
    // A context activated after it passivating proves the passivation delay went by.
    await node.peers.play(other.publicKey, { caller: other.publicKey, script: '1' })
    await waitUntil(() => node.peers.stateOf(other.publicKey) === 'passivated', 'the unwatched context passivated')
    t.equal(node.peers.stateOf(key.publicKey), 'idle', 'the watched one did not')
    await node.peers.play(key.publicKey, { caller: key.publicKey, script: 'save_data("k", 1)' })
    t.match((await watcher.next()).params, { epoch: start.epoch, seq: 1 })
    watcher.close()
    await watcher.closed
    await waitUntil(() => node.peers.stateOf(key.publicKey) === 'passivated', 'the context passivated once unwatched')
    const back = await peer(`${url}${key.publicKey}`)
    // Watched again first: the new log lives on while the resumes below are answered.
    const fresh = await ok(back, 'subscribe', {})
    t.not(fresh.epoch, start.epoch, 'a new epoch')
    const answer = await back.call('subscribe', { after: { epoch: start.epoch, seq: 1 } })
    t.same(answer.error.data, { code: 'RESYNC_REQUIRED', epoch: fresh.epoch, seq: 0 })
    t.match(await back.call('subscribe', { after: { epoch: fresh.epoch, seq: 0 } }), { result: { epoch: fresh.epoch, seq: 0 } }, 'resumable from there')
    back.close()
  }
})

t.test('a host crash in the context: subscribers are told RESYNC_REQUIRED, and so is a resume', async (t) => {
  const { circle, url, node, dbPath, admin } = await startNode(t, { peers: { limits: { timeoutMs: 30_000, cpuMs: 30_000 } } })
  const watcher = await peer(url, circle)
  const start = await ok(watcher, 'subscribe', {})
  const writer = await peer(url, circle)
  const running = writer.call('play', { script: 'save_data("before", 1); for (;;) {}' }, 'crash', 40_000)
  await waitUntil(() => existsSync(join(dbPath, circle.publicKey, 'data', 'before.json')), 'the write reached the disk')
  const [pid] = node.sandbox.pids
  process.kill(pid!, 'SIGKILL')
  t.match((await running).error, { data: { code: 'WORKER_CRASHED' } })
  const ended = await watcher.next()
  t.match(ended, { method: 'subscription_ended', params: { subscription: 's1', code: 'RESYNC_REQUIRED', seq: 0 } })
  t.not(ended.params.epoch, start.epoch)
  t.match(await watcher.call('subscribe', { after: { epoch: start.epoch, seq: 0 } }), { error: { data: { code: 'RESYNC_REQUIRED', epoch: ended.params.epoch, seq: 0 } } })
  await ok(watcher, 'subscribe', {})
  const metrics = await fetch(`${admin}/metrics`).then((r) => r.text())
  t.match(metrics, /^circles_change_logs_lost_total 1$/m, 'counted')
  t.match(metrics, /^circles_subscriptions 1$/m)
  t.match(metrics, /^circles_requests_total\{method="subscribe"\} 3$/m)
  watcher.close()
  writer.close()
})

t.test('a run that reports more than a run may (1,000 notices) starts a new epoch', async (t) => {
  const { circle, url } = await startNode(t, { peers: { limits: { maxEmits: 5_000, maxEmitBytes: 1_000_000 } } })
  const watcher = await peer(url, circle)
  await ok(watcher, 'subscribe', {})
  const writer = await peer(url, circle)
  await ok(writer, 'play', { script: 'for (let i = 0; i < 1000; i++) emit("e", i)' })
  t.match((await watcher.next()).params, { seq: 1 })
  await ok(writer, 'play', { script: 'for (let i = 0; i < 1001; i++) emit("e", i)' })
  for (let seq = 2; seq <= 1000; seq++) await watcher.next()
  t.match(await watcher.next(), { method: 'subscription_ended', params: { code: 'RESYNC_REQUIRED', seq: 0 } })
  watcher.close()
  writer.close()
})

t.test('bounds', async (t) => {
  const { circle, url, node } = await startNode(t, {
    gateway: { maxSubscriptions: 2 },
    live: { maxSubscriptionsPerContext: 3, maxSubscriptionsPerAddress: 3 },
  })

  await t.test('per socket, per address, per context: TOO_MANY_SUBSCRIPTIONS naming the bound', async (t) => {
    const a = await peer(url, circle, '127.0.0.2')
    await ok(a, 'subscribe', {})
    await ok(a, 'subscribe', {})
    t.same((await a.call('subscribe', {})).error, {
      code: -32061,
      message: 'This connection holds 2 subscriptions already',
      data: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 'socket', max: 2 },
    })
    const b = await peer(url, circle, '127.0.0.2')
    await ok(b, 'subscribe', {})
    t.match((await b.call('subscribe', {})).error, { data: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 'address', max: 3 } })
    const c = await peer(url, circle, '127.0.0.3')
    t.match((await c.call('subscribe', {})).error, { data: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 'context', max: 3 } })
    t.same((await a.call('unsubscribe', { subscription: 's2' })).result, { unsubscribed: true })
    t.match(await c.call('subscribe', {}), { result: { subscription: 's2' } }, 'an unsubscribe frees its place')
    a.close()
    await a.closed
    await waitUntil(() => node.peers.subscribersOf(circle.publicKey) === 2, 'the closed socket\'s subscription was dropped')
    t.match(await b.call('subscribe', {}), { result: { subscription: 's2' } }, 'a closed socket frees its places')
    b.close()
    c.close()
  })

  await t.test('params are checked at the door', async (t) => {
    const s = await peer(url, circle)
    const field = async (params: unknown) => (await s.call('subscribe', params)).error?.data
    t.same(await field({ prefix: 1 }), { code: 'INVALID_PARAMS', field: 'prefix' })
    t.same(await field({ prefix: 'x'.repeat(201) }), { code: 'INVALID_PARAMS', field: 'prefix' })
    t.same(await field({ prefix: '\ud800' }), { code: 'INVALID_PARAMS', field: 'prefix' })
    t.same(await field({ topics: [] }), { code: 'INVALID_PARAMS', field: 'topics' })
    t.same(await field({ topics: Array(17).fill('t') }), { code: 'INVALID_PARAMS', field: 'topics' })
    t.same(await field({ topics: ['a', 2] }), { code: 'INVALID_PARAMS', field: 'topics[1]' })
    t.same(await field({ after: { epoch: 'ab' } }), { code: 'INVALID_PARAMS', field: 'after.seq' })
    t.same(await field({ after: { epoch: 'XY', seq: 1 } }), { code: 'INVALID_PARAMS', field: 'after.epoch' })
    t.same(await field({ after: { epoch: 'ab', seq: -1 } }), { code: 'INVALID_PARAMS', field: 'after.seq' })
    t.same(await field({ after: { epoch: 'ab', seq: 1, x: 1 } }), { code: 'INVALID_PARAMS', field: 'after' })
    t.same(await field({ since: 1 }), { code: 'INVALID_PARAMS', field: 'since' })
    t.same((await s.call('unsubscribe', { subscription: 7 })).error.data, { code: 'INVALID_PARAMS', field: 'subscription' })
    t.same((await s.call('unsubscribe', { subscription: 's9' })).result, { unsubscribed: false })
    s.close()
    const nowhere = await openSocket(`${url}nobody`)
    t.match((await nowhere.call('subscribe', {})).error, { data: { code: 'UNKNOWN_CIRCLE' } })
    nowhere.close()
  })

  await t.test('a subscribe in a batch: its notifications follow the batch\'s answer', async (t) => {
    const s = await peer(url, circle)
    s.send([
      { jsonrpc: '2.0', id: 'sub', method: 'subscribe', params: {} },
      { jsonrpc: '2.0', id: 'w', method: 'play', params: { script: 'save_data("in-batch", 1)' } },
    ])
    const answer = await s.next()
    t.match(answer, [{ id: 'sub', result: { subscription: 's1' } }, { id: 'w', result: { output: '' } }])
    t.match(await s.next(), { method: 'changed', params: { subscription: 's1', name: 'in-batch' } })
    s.close()
  })
})

t.test('a subscribed socket is pinged instead of closed as idle; one that does not answer is closed', async (t) => {
  // Anonymous subscribers: nothing but the subscribe itself between a socket's opening and its subscription.
  const { url } = await startNode(t, { policy: { run: 'anonymous' }, gateway: { idleTimeoutMs: 1_000, pingIntervalMs: 100 } })
  const watcher = await peer(url)
  let pings = 0
  watcher.ws.on('ping', () => pings++)
  await ok(watcher, 'subscribe', {})
  const deaf = new WebSocket(url, { autoPong: false })
  const deafClosed = new Promise<number>((resolve) => deaf.on('close', (code) => resolve(code)))
  await new Promise((resolve) => deaf.once('open', resolve))
  deaf.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: {} }))
  const idle = await openSocket(url)
  t.same(await idle.closed, { code: 1001, reason: 'IDLE_TIMEOUT' }, 'a socket without subscriptions is closed as idle')
  const seen = pings
  await waitUntil(() => pings >= seen + 2, 'two more pings')
  t.equal(watcher.ws.readyState, WebSocket.OPEN, 'the subscribed socket answering pings is open past the idle timeout')
  t.equal(await deafClosed, 1001, 'a subscribed socket that does not answer pings is closed as idle')
  watcher.close()
})

t.test('a subscriber that does not read is cut (SLOW_CONSUMER); the writer goes on', async (t) => {
  const log = captureLog()
  const { circle, url, admin, node } = await startNode(t, {
    gateway: { maxBufferedBytes: 1_048_576 },
    logger: log.logger,
    peers: { limits: { maxEmitBytes: 8_000_000, maxEmits: 1_000 } },
  })
  const slow = await peer(url, circle)
  await ok(slow, 'subscribe', {})
  slow.pauseReading()
  const writer = await peer(url, circle)
  let cut = false
  const cutLine = log.waitFor((line) => /SLOW_CONSUMER/.test(line.msg), 60_000).then((line) => {
    cut = true
    return line
  })
  let plays = 0
  while (!cut) {
    await ok(writer, 'play', { script: 'for (let i = 0; i < 60; i++) emit("bulk", "x".repeat(60000))' })
    plays++
    if (plays > 200) break
  }
  t.match(await cutLine, { budget: 'socket' }, 'cut by its send budget, which its notifications are charged to')
  t.ok(plays <= 200, `cut after ${plays} play(s) of 3.6 MB of events each`)
  const metrics = await fetch(`${admin}/metrics`).then((r) => r.text())
  t.match(metrics, /circles_errors_total\{code="SLOW_CONSUMER"\} 1\n/)
  t.match(metrics, /circles_send_budget_cuts_total\{budget="socket"\} 1\n/)
  slow.resumeReading()
  t.same(await slow.closed, { code: 1008, reason: 'SLOW_CONSUMER' }, 'reading at last, the subscriber sees why it was cut')
  await waitUntil(() => node.peers.subscribersOf(circle.publicKey) === 0, 'the cut socket\'s subscription is gone')
  await waitUntil(
    async () => /^circles_send_waiting_bytes 0$/m.test(await fetch(`${admin}/metrics`).then((r) => r.text())),
    'what waited for the cut socket is released',
  )
  t.match(await writer.call('play', { script: '"still served"' }), { result: { output: 'still served' } })
  writer.close()
})

t.test('a launched node: the subscribe key and the emit limits of circles.json', async (t) => {
  const launched = await launchNode(t, {
    circles: [{ name: 'board', port: 0, policy: { run: 'anonymous', write: 'authenticated', subscribe: 'authenticated' }, limits: { max_emits: 2 } }],
  })
  const { url } = launched.circles['board']!
  const anonymous = await peer(url)
  t.match((await anonymous.call('subscribe', {})).error, { data: { code: 'AUTH_REQUIRED' } }, 'subscribe is stricter than run here')
  const watcher = await peer(url, generateKeyPair())
  await ok(watcher, 'subscribe', { prefix: 'posts/', topics: ['t'] })
  const writer = await peer(url, generateKeyPair())
  const emitted = await ok(writer, 'play', { script: 'save_data("posts/1", "hi"); let n = 0; try { for (;;) { emit("t", n); n++ } } catch (e) { [e.code, n] }' })
  t.same(emitted.result, ['QUOTA_EXCEEDED', 2])
  t.match((await watcher.next()).params, { seq: 1, name: 'posts/1', value: 'hi' })
  t.match((await watcher.next()).params, { seq: 2, topic: 't', value: 0 })
  t.match((await watcher.next()).params, { seq: 3, topic: 't', value: 1 })
  for (const socket of [anonymous, watcher, writer]) socket.close()
})

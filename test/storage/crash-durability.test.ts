import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { CirclesClient, RpcError } from '../../src/client/index.js'
import { generateKeyPair } from '../../src/identity/index.js'
import { FAULT_MARKER, FAULTS_ENV } from '../../src/faults/index.js'
import { decodeDocumentName, documentCostBytes } from '../../src/storage/index.js'

// A whole node killed with SIGKILL while 8 clients write — and, for certain, while one write is
// half done: the write-pause fault stops it with its text fsynced in a temporary file, not yet
// renamed over the document — restarted on the same database path:
// every acknowledged write survives, nothing is torn, temporary files are swept, and the size
// the node charges against the quota is the size on disk. (A kill keeps the page cache: this
// checks the write protocol's atomicity and recovery; the fsync order is checked under strace
// in durable-write-order.test.ts.)

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist/src/cli/main.js')
const CLIENTS = 8
const DOCS_PER_CLIENT = 3
/** The node is killed once this many writes have been acknowledged, whatever the timing. */
const KILL_AFTER_ACKS = 240
/** Probe document names: PROBE_CHARS plain characters make a file name of PROBE_CHARS + 5 bytes. */
const PROBE_CHARS = 50

interface Launched {
  readonly child: ChildProcess
  readonly url: string
  readonly publicKey: string
  readonly exited: Promise<number | null>
  /** Resolves once the node's log matches. */
  logged(pattern: RegExp): Promise<void>
}

/** `circles launch` in its own process group (so its sandbox hosts can be awaited after a kill). */
async function launch(t: { teardown(fn: () => unknown): void }, config: string, dbPath: string, env: NodeJS.ProcessEnv = process.env): Promise<Launched> {
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', CLI, 'launch', '--config', config, '--db-path', dbPath, '--sandbox-processes', '1', '--admin-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env },
  )
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const lineWaiters: { pattern: RegExp; resolve: () => void }[] = []
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // Already gone.
    }
  })
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString()
      if (/"msg":"serving /.test(stdout)) resolve()
      for (let i = lineWaiters.length - 1; i >= 0; i--) if (lineWaiters[i]!.pattern.test(stdout)) lineWaiters.splice(i, 1)[0]!.resolve()
    })
    void exited.then((code) => reject(new Error(`launch exited (${code}) before serving: ${stderr}`)))
  })
  const url = /"url":"(ws:\/\/[^"]+)"/.exec(stdout)![1]!
  const publicKey = /"public_key":"([0-9a-f]{66})"/.exec(stdout)![1]!
  const logged = (pattern: RegExp) => (pattern.test(stdout) ? Promise.resolve() : new Promise<void>((resolve) => lineWaiters.push({ pattern, resolve })))
  return { child, url, publicKey, exited, logged }
}

/** Wait until no process of the group is left (the node's sandbox hosts exit when it dies). */
async function groupGone(pgid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    try {
      process.kill(-pgid, 0)
    } catch {
      return
    }
    await sleep(10)
  }
  throw new Error(`process group ${pgid} still alive`)
}

/** The padding of write `seq` of client `i`: 0 to ~9 KB, so values take one to three 4 KiB blocks. */
const padFor = (client: number, seq: number) => (seq * 1031 + client * 17) % 9000

/** "ok", or the error answer of a play as "CODE: message". */
async function outcome(play: Promise<unknown>): Promise<string> {
  try {
    await play
    return 'ok'
  } catch (error) {
    if (error instanceof RpcError) return `${error.code}: ${error.message}`
    throw error
  }
}

interface Written {
  /** Highest seq sent per document (at most one write per client is in flight at a time). */
  readonly sent: Map<string, number>
  /** Highest seq acknowledged per document. */
  readonly acked: Map<string, number>
}

interface Value {
  readonly client: number
  readonly seq: number
  readonly pad: string
}

t.test('kill -9 of a node while 8 clients write: acknowledged writes survive, nothing torn, quota figure = disk', { timeout: 90_000 }, async (t) => {
  if (!existsSync(CLI)) {
    t.fail(`${CLI} is missing: run npm run build first (npm test does)`)
    return
  }
  const dir = t.testdir()
  const dbPath = join(dir, 'db')
  const config = join(dir, 'circles.json')
  const policy = { run: 'authenticated', write: 'authenticated' }
  writeFileSync(config, JSON.stringify([{ name: 'crash', port: 0, policy }]))
  const first = await launch(t, config, dbPath, { ...process.env, [FAULTS_ENV]: 'write-pause' })
  const paused = `pause/${FAULT_MARKER}`
  const pausedValue: Value = { client: -1, seq: 1, pad: 'half written' }

  const written: Written[] = []
  let acks = 0
  let killed = false
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = CirclesClient.builder(first.url).withKey(generateKeyPair().secretKey).build()
      await client.connect()
      await client.authenticate()
      return client
    }),
  )
  const loops = clients.map(async (client, i) => {
    const record: Written = { sent: new Map(), acked: new Map() }
    written.push(record)
    for (let seq = 1; ; seq++) {
      const doc = `c${i}/d${seq % DOCS_PER_CLIENT}`
      const value: Value = { client: i, seq, pad: 'x'.repeat(padFor(i, seq)) }
      record.sent.set(doc, seq)
      try {
        await client.play(`save_data(${JSON.stringify(doc)}, ${JSON.stringify(value)})`)
      } catch (error) {
        if (killed) return record // the connection died with the node
        throw error
      }
      record.acked.set(doc, seq)
      if (++acks === KILL_AFTER_ACKS) {
        // This write stops half done; the writes of the others queue behind it on the host.
        const answered = client.play(`save_data(${JSON.stringify(paused)}, ${JSON.stringify(pausedValue)})`).then(
          () => 'answered',
          () => 'refused',
        )
        const stop = await Promise.race([first.logged(/fault injected: write-pause/).then(() => 'paused'), answered])
        t.equal(stop, 'paused', 'the write stopped half done (not answered)')
        killed = true
        process.kill(first.child.pid!, 'SIGKILL')
        return record
      }
    }
  })
  const records = await Promise.all(loops)
  t.equal(await first.exited, null, 'the node died by the signal')
  await groupGone(first.child.pid!)
  t.ok(acks >= KILL_AFTER_ACKS, `${acks} writes acknowledged before the kill`)

  // The disk as the crash left it.
  const dataDir = join(dbPath, first.publicKey, 'data')
  const files = readdirSync(dataDir)
  const leftovers = files.filter((f) => f.startsWith('.tmp-'))
  // The proof that the kill landed mid-write: the paused write's text is whole in a temporary
  // file, and its document was never published.
  t.same(
    leftovers.map((f) => readFileSync(join(dataDir, f), 'utf8')).filter((text) => text === JSON.stringify(pausedValue)),
    [JSON.stringify(pausedValue)],
    'the half-done write left its text in a temporary file',
  )
  t.notOk(files.some((f) => decodeDocumentName(f) === paused), 'and its document does not exist')
  const onDisk = new Map<string, Value>()
  let usedBytes = 0
  for (const file of files.filter((f) => !f.startsWith('.'))) {
    const name = decodeDocumentName(file)
    t.ok(name !== undefined, `${file} is a document file`)
    const text = readFileSync(join(dataDir, file), 'utf8')
    let value: Value | undefined
    t.doesNotThrow(() => (value = JSON.parse(text) as Value), `${name} is whole JSON, not torn`)
    onDisk.set(name!, value!)
    usedBytes += documentCostBytes(lstatSync(join(dataDir, file)).size, Buffer.byteLength(file))
  }
  // A crash leftover the restart must sweep, whatever the kill happened to leave.
  writeFileSync(join(dataDir, '.tmp-planted'), '{"torn')

  // Each acknowledged write is there with its value or a later one; a document whose only
  // write was in flight may be absent; nothing else is there.
  const expectedDocs = new Set<string>()
  records.forEach((record, i) => {
    for (const [doc, sent] of record.sent) {
      expectedDocs.add(doc)
      const acked = record.acked.get(doc)
      const value = onDisk.get(doc)
      if (acked === undefined) {
        t.ok(value === undefined || value.seq === sent, `${doc}: only its in-flight first write (${sent}) may be there`)
      } else {
        t.ok(value !== undefined && value.seq >= acked && value.seq <= sent, `${doc}: acknowledged ${acked}, sent up to ${sent}, found ${value?.seq}`)
      }
      if (value !== undefined) t.ok(value.client === i && value.pad.length === padFor(i, value.seq), `${doc}: the value is the one sent`)
    }
  })
  t.same([...onDisk.keys()].filter((d) => !expectedDocs.has(d)), [], 'no document nobody wrote')

  // Restart with a namespace quota that leaves room for exactly one more small document with a
  // name of PROBE_CHARS characters, and for exactly one more document.
  const documents = onDisk.size
  const limit = usedBytes + documentCostBytes(1, PROBE_CHARS + 5)
  writeFileSync(config, JSON.stringify([{ name: 'crash', port: 0, policy, limits: { max_namespace_bytes: limit, max_documents: documents + 1 } }]))
  const second = await launch(t, config, dbPath)
  t.equal(second.publicKey, first.publicKey, 'the same circle came back')
  const probe = CirclesClient.builder(second.url).withKey(generateKeyPair().secretKey).build()
  t.teardown(() => probe.close())
  await probe.connect()
  await probe.authenticate()

  t.equal(
    await outcome(probe.play(`save_data("${'p'.repeat(PROBE_CHARS + 1)}", 1)`)),
    `QUOTA_EXCEEDED: Namespace would use ${limit + 1} bytes; the limit is ${limit}`,
    'one byte over is refused: the node counts exactly the bytes on disk',
  )
  t.equal(await outcome(probe.play(`save_data("${'p'.repeat(PROBE_CHARS)}", 1)`)), 'ok', 'a write that exactly fits succeeds')
  t.equal(
    await outcome(probe.play('save_data("q", 1)')),
    `QUOTA_EXCEEDED: Namespace holds ${documents + 1} documents; the limit is ${documents + 1} (overwrite or delete one instead)`,
    'and the node counts exactly the documents on disk',
  )
  t.same(readdirSync(dataDir).filter((f) => f.startsWith('.')), [], 'no temporary file remains once the namespace was opened again')

  // The documents as the restarted node serves them are the ones on disk.
  const served = await probe.play('const out = {}; for (const n of list_data("c")) out[n] = load_data(n); out')
  t.same(JSON.parse(served.output), Object.fromEntries([...onDisk].sort(([a], [b]) => (a < b ? -1 : 1))), 'the node serves what survived')

  process.kill(second.child.pid!, 'SIGTERM')
  t.equal(await second.exited, 0, 'the restarted node drains and stops')
})

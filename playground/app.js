// The Circles playground. It talks to the node only through the client library's browser
// build (circles-client.js beside this file), over this page's own origin.
import { CirclesClient, CirclesClientError, eip1193Signer, generateKeyPair, secretKeySigner } from './circles-client.js'

const STORAGE_KEY = 'circles.playground.secretKey'
const SCRIPT_KEY = 'circles.playground.script'
const REQUEST_TIMEOUT_MS = 15_000

const EXAMPLES = [
  {
    name: 'Who am I?',
    script:
      '// The last expression is the result; print() lines are the logs.\n' +
      'print("hello from", CALLER_PUBLIC_KEY || "an anonymous caller");\n' +
      '({ me: CALLER_PUBLIC_KEY, circle: CIRCLE_PUBLIC_KEY, documents: list_data() })\n',
  },
  { name: 'Read the profile', script: 'load_data("profile")\n' },
  {
    name: 'Save and load a note',
    script:
      '// Needs write permission: the circle\'s policy decides.\n' +
      'save_data("notes/hello", { text: "hi", by: CALLER_PUBLIC_KEY, at: Date.now() });\n' +
      'load_data("notes/hello")\n',
  },
  { name: 'List documents', script: 'list_data("")\n' },
  {
    name: 'Post to the board',
    script:
      '// Press "Watch" (prefix posts/) in another tab: the post shows up there at once.\n' +
      'const name = "posts/" + new Date().toISOString();\n' +
      'save_data(name, { text: "Hello, board!", by: CALLER_PUBLIC_KEY });\n' +
      'name\n',
  },
  {
    name: 'Emit an event',
    script: '// Events reach the watchers of their topic and are stored nowhere.\nemit("typing", { by: CALLER_PUBLIC_KEY });\n"sent"\n',
  },
  {
    name: 'Escrow: advance my side (examples/escrow)',
    script:
      '// Run in a buyer\'s or seller\'s context by its owner, once its `deal` is saved: see\n' +
      '// examples/escrow/README.md. Reads the other side\'s deal with call() — across nodes too.\n' +
      "(async () => {\n" +
      "  const mine = load_data('deal')\n" +
      "  if (mine === null) throw new Error('no deal in this context: save one first')\n" +
      "  const other = mine.role === 'buyer' ? mine.seller : mine.buyer\n" +
      "  const theirs = await call(other, 'load_data(\"deal\")')\n" +
      "  const namesMe = theirs !== null && (mine.role === 'buyer' ? theirs.buyer : theirs.seller) === CIRCLE_PUBLIC_KEY\n" +
      "  if (!namesMe || theirs.amount !== mine.amount) return { state: mine.state, waiting: 'the other side has no matching deal' }\n" +
      "  let next = mine.state\n" +
      "  if (mine.role === 'buyer' && mine.state === 'funded' && theirs.state === 'shipped') next = 'released'\n" +
      "  if (mine.role === 'seller' && mine.state === 'open' && theirs.state === 'funded') next = 'shipped'\n" +
      "  if (mine.role === 'seller' && mine.state === 'shipped' && theirs.state === 'released') next = 'paid'\n" +
      "  if (next !== mine.state) save_data('deal', { ...mine, state: next })\n" +
      "  return { state: next, theirs: theirs.state }\n" +
      "})()\n",
  },
  { name: 'Catch an error code', script: 'try { save_data("profile", 1); "saved" } catch (e) { e.code }\n' },
  { name: 'Run too long', script: 'while (true) {}\n' },
]

const $ = (id) => document.getElementById(id)
const el = {
  status: $('status'), circleName: $('circle-name'), keyStatus: $('key-status'),
  generate: $('generate'), paste: $('paste'), wallet: $('wallet'), forget: $('forget'),
  pasteRow: $('paste-row'), secret: $('secret'), useSecret: $('use-secret'), keyError: $('key-error'),
  connect: $('connect'), authenticate: $('authenticate'), disconnect: $('disconnect'),
  script: $('script'), examples: $('examples'), run: $('run'),
  idleNote: $('idle-note'), error: $('error'), errorCode: $('error-code'), errorMessage: $('error-message'),
  output: $('output'), resultJson: $('result-json'), logs: $('logs'), timings: $('timings'),
  info: $('info'), limits: $('limits').tBodies[0], resultCard: $('result-card'),
  livePrefix: $('live-prefix'), watch: $('watch'), liveStatus: $('live-status'), liveList: $('live-list'),
}

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`

/** The key in use: `{ kind: 'secret', signer, secret }`, `{ kind: 'wallet', signer }`, or undefined. */
let identity
let client
let busy = false

const storage = {
  get(key) {
    try { return localStorage.getItem(key) } catch { return null }
  },
  set(key, value) {
    try { localStorage.setItem(key, value) } catch { /* storage unavailable: the key lives for this page only */ }
  },
  remove(key) {
    try { localStorage.removeItem(key) } catch { /* nothing stored */ }
  },
}

const short = (hex) => (hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-8)}` : hex)

function showStatus(state) {
  const labels = {
    idle: 'not connected', connecting: 'connecting…', open: 'connected (anonymous)',
    authenticated: `authenticated as ${short(client?.publicKey ?? '')}`, reconnecting: 'reconnecting…', closed: 'disconnected',
  }
  el.status.dataset.state = state
  el.status.textContent = labels[state] ?? state
  el.status.title = state === 'authenticated' ? client?.publicKey ?? '' : ''
  const connected = state === 'open' || state === 'authenticated' || state === 'reconnecting'
  el.connect.disabled = connected || state === 'connecting'
  el.disconnect.disabled = !connected
  el.authenticate.disabled = identity === undefined || state === 'authenticated'
}

function showKey() {
  if (identity === undefined) el.keyStatus.textContent = 'No key: you run scripts anonymously.'
  else if (identity.kind === 'wallet') el.keyStatus.textContent = `Browser wallet ${identity.signer.address}`
  else el.keyStatus.textContent = `Public key ${identity.signer.publicKey}`
  el.forget.disabled = identity === undefined
  showStatus(client?.state ?? 'idle')
}

/**
 * A new key means a new connection (one connection authenticates once), and the last run's
 * answer — an AUTH_REQUIRED telling to get a key, say — no longer applies.
 */
async function useIdentity(next) {
  identity = next
  el.keyError.hidden = true
  el.pasteRow.hidden = true
  el.secret.value = ''
  await dropClient()
  clearResult()
  el.idleNote.hidden = false
  showKey()
}

async function dropClient() {
  const old = client
  client = undefined
  stopLive('Not watching: the connection was closed.')
  showStatus('idle')
  if (old !== undefined) await old.close()
}

function getClient() {
  if (client === undefined || client.state === 'closed') {
    let builder = CirclesClient.builder(wsUrl).withTimeout(REQUEST_TIMEOUT_MS).withReconnect({ maxAttempts: 5 })
    if (identity !== undefined) builder = builder.withKey(identity.signer)
    const fresh = builder.build()
    fresh.onStateChange((state) => {
      if (client === fresh) showStatus(state)
    })
    client = fresh
  }
  return client
}

function clearResult() {
  el.idleNote.hidden = true
  el.error.hidden = true
  el.errorCode.textContent = ''
  el.errorMessage.textContent = ''
  el.output.textContent = ''
  el.resultJson.textContent = ''
  el.logs.textContent = ''
  el.timings.textContent = ''
}

function showError(error, roundTripMs) {
  el.idleNote.hidden = true
  el.error.hidden = false
  el.errorCode.textContent = error instanceof CirclesClientError ? error.code : 'ERROR'
  el.errorMessage.textContent = error instanceof Error ? error.message : String(error)
  if (error instanceof CirclesClientError && error.code === 'AUTH_REQUIRED' && identity === undefined) {
    el.errorMessage.textContent += ' — press “Generate key” (or paste one), then Run again.'
  }
  const data = error instanceof CirclesClientError ? error.data : {}
  if (Array.isArray(data.logs)) el.logs.textContent = data.logs.join('\n')
  showTimings(data.timings, roundTripMs)
}

const ms = (value) => `${Number(value).toFixed(3).replace(/\.?0+$/, '')} ms`

function showTimings(timings, roundTripMs) {
  const parts = []
  if (timings && typeof timings === 'object') {
    parts.push(`queued ${ms(timings.queued_ms)}`, `run ${ms(timings.run_ms)}`, `cpu ${ms(timings.cpu_ms)}`)
  }
  if (roundTripMs !== undefined) parts.push(`round trip ${roundTripMs.toFixed(1)} ms`)
  el.timings.textContent = parts.join(' · ')
}

async function ensureConnected() {
  const c = getClient()
  await c.connect()
  return c
}

async function action(fn) {
  if (busy) return
  busy = true
  try {
    await fn()
  } catch (error) {
    clearResult()
    showError(error)
  } finally {
    busy = false
  }
}

async function run() {
  if (busy) return
  busy = true
  el.run.disabled = true
  const script = el.script.value
  storage.set(SCRIPT_KEY, script)
  clearResult()
  el.output.textContent = 'running…'
  const started = performance.now()
  try {
    const c = await ensureConnected()
    // With a key at hand, run as its owner: authenticate first if this connection has not.
    if (identity !== undefined && c.state === 'open') await c.authenticate()
    const result = await c.play(script)
    const roundTripMs = performance.now() - started
    el.output.textContent = result.output
    // A string (or BigInt) result is not sent twice: `output` is the value itself.
    el.resultJson.textContent = 'result' in result ? JSON.stringify(result.result, null, 2) : JSON.stringify(result.output)
    el.logs.textContent = result.logs.join('\n') + (result.logs_truncated ? '\n… (cut: over the log limit)' : '')
    showTimings(result.timings, roundTripMs)
  } catch (error) {
    el.output.textContent = ''
    showError(error, performance.now() - started)
  } finally {
    busy = false
    el.run.disabled = false
    // On a phone the result is below the editor: bring it into view.
    const top = el.resultCard.getBoundingClientRect().top
    if (top > window.innerHeight * 0.8) el.resultCard.scrollIntoView({ block: 'start' })
  }
}

// Live: the documents under a prefix, kept current by the node's notifications.
let watching // { prefix, stop } while a subscription runs
const posts = new Map() // name → its <li>

function showPost(name, value) {
  let item = posts.get(name)
  if (item === undefined) {
    item = document.createElement('li')
    posts.set(name, item)
    el.liveList.prepend(item)
  }
  const label = document.createElement('code')
  label.textContent = name
  const text = value !== null && typeof value === 'object' && typeof value.text === 'string' ? value.text : JSON.stringify(value)
  item.replaceChildren(label, document.createTextNode(text))
}

function removePost(name) {
  posts.get(name)?.remove()
  posts.delete(name)
}

/** Read the newest documents under the prefix (after subscribing, so that nothing falls between). */
async function readPosts(c, prefix) {
  const script = `list_data(${JSON.stringify(prefix)}).slice(-50).map((name) => [name, load_data(name)])`
  const { result } = await c.play(script)
  for (const [name, value] of result) showPost(name, value)
}

function onNotice(c, prefix, notice) {
  if (notice.type === 'changed') {
    if (notice.op === 'delete') removePost(notice.name)
    else if (notice.truncated) void c.play(`load_data(${JSON.stringify(notice.name)})`).then((r) => showPost(notice.name, r.result), () => {})
    else showPost(notice.name, notice.value)
  } else if (notice.type === 'resync') {
    // Notices were lost (the node restarted, say): read again.
    void readPosts(c, prefix).catch(() => {})
  } else if (notice.type === 'ended') {
    stopLive(`Not watching: ${notice.error.code} — ${notice.error.message}`)
  }
}

function stopLive(status) {
  const current = watching
  watching = undefined
  el.watch.textContent = 'Watch'
  if (current !== undefined) {
    el.liveStatus.textContent = status
    void current.stop().catch(() => {})
  }
}

async function toggleWatch() {
  if (watching !== undefined) return stopLive('Not watching.')
  const prefix = el.livePrefix.value
  const c = await ensureConnected()
  if (identity !== undefined && c.state === 'open') await c.authenticate()
  posts.clear()
  el.liveList.replaceChildren()
  const stop = await c.subscribe({ prefix }, (notice) => onNotice(c, prefix, notice))
  watching = { prefix, stop }
  el.watch.textContent = 'Stop'
  el.liveStatus.textContent = `Watching ${prefix === '' ? 'every document' : `"${prefix}"`}: changes appear here as they are written.`
  await readPosts(c, prefix)
}

/** The limits of /info by what they are, not by their field names (which stay in the tooltip). */
const LIMIT_LABELS = {
  max_frame_bytes: 'Frame', max_batch_entries: 'Requests per batch', max_batch_answer_bytes: 'Answers of one batch',
  max_script_bytes: 'Script source', max_in_flight_per_connection: 'Requests in flight per connection',
  max_buffered_bytes_per_connection: 'Unread answers per connection', nonce_ttl_ms: 'Nonce lifetime',
  idle_timeout_ms: 'Idle connection closed after', script_timeout_ms: 'Script wall time', script_cpu_ms: 'Script CPU time',
  script_memory_mb: 'Script heap', max_output_bytes: 'Result size', max_log_bytes: 'print output per run', max_log_lines: 'print lines per run',
  max_subscriptions_per_connection: 'Subscriptions per connection', max_emits: 'emit() events per run',
  max_emit_bytes: 'emit() bytes per run', max_notify_value_bytes: 'Value a notification carries',
}

function limitLabel(key) {
  if (LIMIT_LABELS[key] !== undefined) return LIMIT_LABELS[key]
  const words = key.replace(/^max_/, '').replace(/_(bytes|ms|mb)(?=_|$)/, '').replaceAll('_', ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

function limitValue(key, value) {
  const n = Number(value)
  const unit = /_(bytes|ms|mb)(?=_|$)/.exec(key)?.[1]
  if (unit === 'mb') return `${n.toLocaleString('en')} MiB`
  if (unit === 'bytes') {
    for (const [unit, size] of [['MiB', 1_048_576], ['KiB', 1_024]]) if (n >= size && n % size === 0) return `${(n / size).toLocaleString('en')} ${unit}`
    return `${n.toLocaleString('en')} bytes`
  }
  if (unit === 'ms') {
    if (n >= 60_000 && n % 60_000 === 0) return `${n / 60_000} min`
    if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000} s`
    return `${n.toLocaleString('en')} ms`
  }
  return n.toLocaleString('en')
}

async function loadInfo() {
  try {
    const info = await getClient().info()
    el.circleName.textContent = `· ${info.name}`
    document.title = `${info.name} · Circles playground`
    const rows = [
      ['name', info.name], ['public key', info.public_key], ['version', info.version],
      ['run policy', JSON.stringify(info.policy.run)], ['write policy', JSON.stringify(info.policy.write)],
      ['call policy', JSON.stringify(info.policy.call)], ['subscribe policy', JSON.stringify(info.policy.subscribe)],
      ['websocket', wsUrl],
    ]
    el.info.replaceChildren(
      ...rows.flatMap(([k, v]) => {
        const dt = document.createElement('dt')
        dt.textContent = k
        const dd = document.createElement('dd')
        dd.textContent = v
        return [dt, dd]
      }),
    )
    el.limits.replaceChildren(
      ...Object.entries(info.limits).map(([k, v]) => {
        const tr = document.createElement('tr')
        tr.title = k
        const name = document.createElement('td')
        name.textContent = limitLabel(k)
        const value = document.createElement('td')
        value.textContent = limitValue(k, v)
        tr.append(name, value)
        return tr
      }),
    )
  } catch (error) {
    el.info.textContent = `GET /info failed: ${error instanceof Error ? error.message : error}`
  }
}

// Wiring.
for (const [i, example] of EXAMPLES.entries()) {
  const option = document.createElement('option')
  option.value = String(i)
  option.textContent = `Example: ${example.name}`
  el.examples.append(option)
}
el.script.value = storage.get(SCRIPT_KEY) ?? EXAMPLES[0].script
el.examples.addEventListener('change', () => {
  el.script.value = EXAMPLES[Number(el.examples.value)].script
  el.script.focus()
})
el.script.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault()
    void run()
  }
})
el.run.addEventListener('click', () => void run())

el.generate.addEventListener('click', () => void action(async () => {
  const pair = generateKeyPair()
  storage.set(STORAGE_KEY, pair.secretKey)
  await useIdentity({ kind: 'secret', signer: secretKeySigner(pair.secretKey) })
}))
el.paste.addEventListener('click', () => {
  el.pasteRow.hidden = !el.pasteRow.hidden
  if (!el.pasteRow.hidden) el.secret.focus()
})
const usePasted = () => void action(async () => {
  const secret = el.secret.value.trim()
  let signer
  try {
    signer = secretKeySigner(secret)
  } catch {
    // Said beside the key box, where the mistake is; the result area keeps the last run.
    el.keyError.textContent = 'Not a secret key: paste 64 hexadecimal characters (0x optional).'
    el.keyError.hidden = false
    el.secret.focus()
    return
  }
  storage.set(STORAGE_KEY, secret)
  await useIdentity({ kind: 'secret', signer })
})
el.useSecret.addEventListener('click', usePasted)
el.secret.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') usePasted()
})
el.forget.addEventListener('click', () => void action(async () => {
  storage.remove(STORAGE_KEY)
  await useIdentity(undefined)
}))
if (globalThis.ethereum !== undefined) {
  el.wallet.hidden = false
  el.wallet.addEventListener('click', () => void action(async () => {
    // A wallet exposes an address, not a key: the client authenticates with { address }.
    await useIdentity({ kind: 'wallet', signer: await eip1193Signer(globalThis.ethereum) })
  }))
}
el.connect.addEventListener('click', () => void action(ensureConnected))
el.authenticate.addEventListener('click', () => void action(async () => {
  const c = await ensureConnected()
  await c.authenticate()
}))
el.disconnect.addEventListener('click', () => void action(dropClient))
el.watch.addEventListener('click', () => void action(toggleWatch))

const stored = storage.get(STORAGE_KEY)
if (stored !== null) {
  try {
    identity = { kind: 'secret', signer: secretKeySigner(stored) }
  } catch {
    storage.remove(STORAGE_KEY)
  }
}
showKey()
void loadInfo()

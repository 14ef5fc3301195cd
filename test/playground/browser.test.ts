import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Wallet } from 'ethers'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { WebSocket, WebSocketServer } from 'ws'
import { generateKeyPair } from '../../src/identity/index.js'
import { ensureBrowserBundle, ROOT } from '../helpers/browser-build.js'
import { startNode } from '../helpers/node.js'

// Page-side code runs in the browser; this file is compiled without the DOM library.
declare const document: any, window: any, localStorage: any

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOTS = join(ROOT, '.tap', 'screenshots')
const DESKTOP = { width: 1280, height: 900 }
// An iPhone 12-14 sized window.
const PHONE = { width: 390, height: 844 }
const WAIT_MS = 20_000

async function openBrowser(t: { teardown(fn: () => unknown): void }): Promise<BrowserContext> {
  // A fresh profile every run: no state from earlier runs, nothing fetched at start-up.
  const profile = mkdtempSync(join(tmpdir(), 'circles-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return context
}

/**
 * An EIP-1193 provider for `window.ethereum`, holding its key in the page: it answers
 * `eth_requestAccounts` with its address and signs `personal_sign` with the playground's own
 * client bundle, recording every message it was asked to sign in `window.__walletSigned`.
 * (Runs in the browser, before the page's scripts.)
 */
function injectWallet({ secret, address }: { secret: string; address: string }): void {
  const signed: { message: string; account: string }[] = []
  window.__walletSigned = signed
  window.ethereum = {
    async request({ method, params }: { method: string; params?: string[] }) {
      if (method === 'eth_requestAccounts') return [address]
      if (method !== 'personal_sign') throw new Error(`unsupported ${method}`)
      const [hex, account] = params as [string, string]
      const bytes = new Uint8Array((hex.slice(2).match(/../g) ?? []).map((h) => Number.parseInt(h, 16)))
      const message = new TextDecoder().decode(bytes)
      signed.push({ message, account })
      const { secretKeySigner } = await import('/playground/circles-client.js' as string)
      return secretKeySigner(secret).signMessage(message)
    },
  }
}

/**
 * A relay in front of the node: it serves the playground from its own address (fetched from the
 * node) and forwards each WebSocket to the node frame by frame, as a site that wants to sign in
 * as its visitors would. Resolves with its http URL.
 */
async function pageRelay(t: { teardown(fn: () => unknown): void }, node: string): Promise<string> {
  const wss = new WebSocketServer({ noServer: true })
  const server = createServer((req, res) => {
    void fetch(`${node}${req.url}`).then(async (answer) => {
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' })
      res.end(Buffer.from(await answer.arrayBuffer()))
    })
  })
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (visitor) => {
      const upstream = new WebSocket(`${node.replace('http', 'ws')}${req.url}`)
      const opened = once(upstream, 'open')
      visitor.on('message', (data) => void opened.then(() => upstream.send(data.toString())))
      upstream.on('message', (data) => visitor.send(data.toString()))
      upstream.on('close', () => visitor.close())
      visitor.on('close', () => upstream.close())
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const client of wss.clients) client.terminate()
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function runScript(page: Page, script: string, how: 'click' | 'keys' = 'click'): Promise<void> {
  await page.fill('#script', script)
  // A run clears the result area and shows "running…" as it starts; then wait for its answer.
  if (how === 'keys') {
    await page.focus('#script')
    await page.keyboard.press('Control+Enter')
  } else {
    await page.click('#run')
  }
  await page.waitForFunction(
    () => {
      const output = document.getElementById('output')!.textContent
      const error = document.getElementById('error')!
      return (output !== '' && output !== 'running…') || !error.hidden
    },
    undefined,
    { timeout: WAIT_MS },
  )
}

t.test('the playground in a real browser (Debian chromium, headless)', { skip: existsSync(CHROMIUM) || process.env['CI'] === 'true' ? false : `${CHROMIUM} is missing: apt-get install chromium (required under CI)` }, async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed (CI installs it; no browser is ever downloaded)`)
  if (!existsSync(CHROMIUM)) return
  ensureBrowserBundle()
  // A notice board: anyone may run scripts, only authenticated callers write.
  const { node, circle, http } = await startNode(t, { policy: { run: 'anonymous', write: 'authenticated' } })
  const context = await openBrowser(t)
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const problems: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))
  mkdirSync(SCREENSHOTS, { recursive: true })

  const response = await page.goto(`${http}/`)
  t.equal(response?.status(), 200)
  const headers = response!.headers()
  t.equal(headers['content-type'], 'text/html; charset=utf-8')
  t.match(headers['content-security-policy'], /script-src 'self';/)
  t.match(headers['content-security-policy'], new RegExp(`connect-src 'self' ws://${http.replace('http://', '').replace(/\./g, '\\.')};`))

  await t.test('shows the circle /info: name, key, policy, limits', async (t) => {
    await page.waitForFunction((key) => document.getElementById('info')!.textContent!.includes(key), circle.publicKey)
    const info = await page.textContent('#info')
    t.match(info, /name\s*test/)
    t.match(info, /run policy\s*"anonymous"/)
    t.match(info, /write policy\s*"authenticated"/)
    t.match(info, /subscribe policy\s*"anonymous"/)
    t.match(info, /call policy\s*"owner"/)
    const limits = (await page.textContent('#limits'))!
    t.match(limits, /Script wall time\s*1 s/, 'limits by what they are, in their units')
    t.match(limits, /Script heap\s*64 MiB/)
    t.match(limits, /Frame\s*1 MiB/)
    t.match(limits, /Unread answers per connection\s*16 MiB/)
    t.notMatch(limits, /[a-z]+_[a-z]+/, 'no snake_case field names')
    t.equal(await page.getAttribute('#limits tr:first-child', 'title'), 'max_frame_bytes', 'the field name is in the tooltip')
  })

  await t.test('an anonymous write is refused: the error code is shown', async (t) => {
    await runScript(page, 'save_data("notes/anon", 1)')
    t.equal(await page.textContent('#error-code'), 'FORBIDDEN')
    t.match(await page.textContent('#error-message'), /policy/)
    t.equal(await page.getAttribute('#status', 'data-state'), 'open', 'connected anonymously')
  })

  await t.test('a bad pasted key is refused beside the key box; the result area keeps the last run', async (t) => {
    await page.click('#paste')
    await page.fill('#secret', 'not-a-key')
    await page.click('#use-secret')
    await page.waitForSelector('#key-error:not([hidden])')
    t.equal(await page.textContent('#key-error'), 'Not a secret key: paste 64 hexadecimal characters (0x optional).')
    t.equal(await page.textContent('#error-code'), 'FORBIDDEN', 'the last run is still shown')
    t.match(await page.textContent('#key-status'), /^No key/)
  })

  let publicKey = ''
  await t.test('generate a key, authenticate, save and load a document', async (t) => {
    await page.click('#generate')
    await page.waitForSelector('#error', { state: 'hidden' })
    t.equal(await page.isHidden('#key-error'), true, 'the key error is gone with the new key')
    t.equal(await page.isVisible('#idle-note'), true, "the last run's answer is cleared: it was for the old key")
    t.equal(await page.isHidden('#paste-row'), true, 'the paste box is closed')
    await page.waitForFunction(() => /Public key 0[23][0-9a-f]{64}/.test(document.getElementById('key-status')!.textContent!))
    publicKey = /0[23][0-9a-f]{64}/.exec((await page.textContent('#key-status'))!)![0]
    await page.click('#authenticate')
    await page.waitForSelector('#status[data-state="authenticated"]')
    await runScript(page, 'save_data("notes/hello", { text: "hi from the browser", by: CALLER_PUBLIC_KEY });\nload_data("notes/hello")', 'keys')
    t.equal(await page.isHidden('#error'), true, 'no error')
    t.same(JSON.parse((await page.textContent('#result-json'))!), { text: 'hi from the browser', by: publicKey })
    t.match(await page.textContent('#timings'), /queued [\d.]+ ms · run [\d.]+ ms · cpu [\d.]+ ms · round trip/)
    await runScript(page, 'print("a log line"); CALLER_PUBLIC_KEY')
    t.equal(await page.textContent('#output'), publicKey, 'the caller is the generated key')
    t.equal(await page.textContent('#result-json'), JSON.stringify(publicKey), 'a string result shows as JSON too')
    t.equal(await page.textContent('#logs'), 'a log line')
    const stored = await node.peers.play(circle.publicKey, { caller: circle.publicKey, script: 'load_data("notes/hello").by' })
    t.equal(stored.output, publicKey, 'the document is on the node')
    await page.screenshot({ path: join(SCREENSHOTS, 'playground-desktop.png'), fullPage: true })
  })

  await t.test('the board, live: a post made on one page shows on the other without a reload', async (t) => {
    const watcher = await context.newPage()
    watcher.setDefaultTimeout(WAIT_MS)
    watcher.on('pageerror', (error) => problems.push(error.message))
    await watcher.goto(`${http}/`)
    t.equal(await watcher.inputValue('#live-prefix'), 'posts/')
    await watcher.click('#watch')
    await watcher.waitForFunction(() => document.getElementById('live-status')!.textContent!.startsWith('Watching "posts/"'))
    t.equal(await watcher.textContent('#live-list'), '', 'no posts yet')
    // A reload would lose this mark.
    await watcher.evaluate(() => void (window.stillTheSamePage = true))

    await page.selectOption('#examples', { label: 'Example: Post to the board' })
    await page.fill('#script', (await page.inputValue('#script')).replace('Hello, board!', 'Posted from the other page'))
    await runScript(page, await page.inputValue('#script'))
    t.equal(await page.isHidden('#error'), true, 'the post was accepted')
    const name = (await page.textContent('#output'))!
    t.match(name, /^posts\//)

    await watcher.waitForFunction((text) => document.getElementById('live-list')!.textContent!.includes(text), 'Posted from the other page')
    t.equal(await watcher.textContent('#live-list li code'), name, 'listed under its name')
    t.equal(await watcher.evaluate(() => window.stillTheSamePage), true, 'the watching page was not reloaded')
    await runScript(page, `save_data(${JSON.stringify(name)}, { text: "Edited" }); "edited"`)
    await watcher.waitForFunction(() => document.getElementById('live-list')!.textContent!.includes('Edited'))
    t.equal(await watcher.locator('#live-list li').count(), 1, 'an edit replaces the post in place')
    await watcher.screenshot({ path: join(SCREENSHOTS, 'playground-live.png'), fullPage: true })
    await watcher.close()
  })

  await t.test('the key stays in the browser across reloads, and "forget" removes it', async (t) => {
    await page.reload()
    await page.waitForFunction((key) => document.getElementById('key-status')!.textContent!.includes(key), publicKey)
    await page.click('#forget')
    await page.waitForFunction(() => document.getElementById('key-status')!.textContent!.startsWith('No key'))
    t.equal(await page.evaluate(() => localStorage.getItem('circles.playground.secretKey')), null)
  })

  await t.test('at phone width (390 px): no horizontal scroll, the Run button in view', async (t) => {
    await page.setViewportSize(PHONE)
    await page.reload()
    await runScript(page, 'save_data("notes/phone", 1)')
    t.equal(await page.textContent('#error-code'), 'FORBIDDEN')
    await page.evaluate(() => window.scrollTo(0, 0))
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
    t.ok(widths.scroll <= widths.client, `no horizontal scroll (${widths.scroll} ≤ ${widths.client})`)
    t.ok(await page.isVisible('#run'))
    const box = await page.locator('#run').boundingBox()
    t.ok(box !== null && box.x >= 0 && box.x + box.width <= PHONE.width && box.y >= 0 && box.y + box.height <= PHONE.height, `Run is on the first screen: ${JSON.stringify(box)}`)
    await page.screenshot({ path: join(SCREENSHOTS, 'playground-390px.png'), fullPage: true })
  })

  const holder = generateKeyPair()
  const walletAddress = new Wallet(`0x${holder.secretKey}`).address
  const host = http.replace('http://', '')

  await t.test('a browser wallet (an EIP-1193 provider) signs in; it is asked to sign the sign-in message', async (t) => {
    const walletPage = await context.newPage()
    walletPage.setDefaultTimeout(WAIT_MS)
    walletPage.on('pageerror', (error) => problems.push(error.message))
    await walletPage.addInitScript(injectWallet, { secret: holder.secretKey, address: walletAddress })
    await walletPage.goto(`${http}/`)
    await walletPage.click('#wallet')
    await walletPage.waitForFunction((address) => document.getElementById('key-status')!.textContent === `Browser wallet ${address}`, walletAddress)
    await walletPage.click('#authenticate')
    await walletPage.waitForSelector('#status[data-state="authenticated"]')
    await runScript(walletPage, 'CALLER_PUBLIC_KEY')
    t.equal(await walletPage.textContent('#output'), holder.publicKey, 'the node recovered the key behind the wallet’s address')
    const signed = (await walletPage.evaluate(() => window.__walletSigned)) as { message: string; account: string }[]
    t.equal(signed.length, 1)
    t.equal(signed[0]!.account, walletAddress)
    t.same(signed[0]!.message.split('\n').slice(0, 8), [
      `${host} wants you to sign in with your Ethereum account:`,
      walletAddress,
      '',
      `Sign in to the Circles context ${circle.publicKey}.`,
      '',
      `URI: ws://${host}/`,
      'Version: 1',
      'Chain ID: 1',
    ])
    await walletPage.close()
  })

  await t.test('served through a relay, the page refuses to sign: SIGN_IN_MISMATCH, and the wallet is never asked', async (t) => {
    const relayed = await pageRelay(t, http)
    const relayPage = await context.newPage()
    relayPage.setDefaultTimeout(WAIT_MS)
    relayPage.on('pageerror', (error) => problems.push(error.message))
    await relayPage.addInitScript(injectWallet, { secret: holder.secretKey, address: walletAddress })
    await relayPage.goto(`${relayed}/`)
    await relayPage.waitForFunction((key) => document.getElementById('info')!.textContent!.includes(key), circle.publicKey)
    await relayPage.click('#wallet')
    await relayPage.waitForFunction((address) => document.getElementById('key-status')!.textContent === `Browser wallet ${address}`, walletAddress)
    await relayPage.click('#authenticate')
    await relayPage.waitForSelector('#error:not([hidden])')
    t.equal(await relayPage.textContent('#error-code'), 'SIGN_IN_MISMATCH')
    t.match(await relayPage.textContent('#error-message'), `expected "${relayed.replace('http://', '')} wants you to sign in`)
    t.same(await relayPage.evaluate(() => window.__walletSigned), [], 'no personal_sign reached the wallet')
    // A generated key (signed in the page itself) is refused the same way.
    await relayPage.click('#generate')
    await relayPage.waitForFunction(() => /Public key 0[23]/.test(document.getElementById('key-status')!.textContent!))
    await relayPage.evaluate(() => (document.getElementById('error')!.hidden = true))
    await relayPage.click('#authenticate')
    await relayPage.waitForSelector('#error:not([hidden])')
    t.equal(await relayPage.textContent('#error-code'), 'SIGN_IN_MISMATCH')
    t.not(await relayPage.getAttribute('#status', 'data-state'), 'authenticated')
    await relayPage.close()
  })

  await t.test('AUTH_REQUIRED says to get a key, and "Generate key" clears it', async (t) => {
    // A circle with the default policy: only authenticated callers run scripts.
    const closed = await startNode(t)
    const other = await context.newPage()
    other.setDefaultTimeout(WAIT_MS)
    other.on('pageerror', (error) => problems.push(error.message))
    await other.goto(`${closed.http}/`)
    await runScript(other, '1 + 1')
    t.equal(await other.textContent('#error-code'), 'AUTH_REQUIRED')
    t.match(await other.textContent('#error-message'), /press “Generate key”/)
    await other.click('#generate')
    await other.waitForSelector('#error', { state: 'hidden' })
    t.equal(await other.isVisible('#idle-note'), true)
    await runScript(other, '1 + 1')
    t.equal(await other.textContent('#output'), '2')
    t.equal(await other.textContent('#result-json'), '2')
    await other.close()
  })

  t.same(problems, [], 'no console errors, no CSP violations')
})

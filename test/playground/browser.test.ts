import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
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
    t.match(await page.textContent('#limits'), /script_timeout_ms/)
  })

  await t.test('an anonymous write is refused: the error code is shown', async (t) => {
    await runScript(page, 'save_data("notes/anon", 1)')
    t.equal(await page.textContent('#error-code'), 'FORBIDDEN')
    t.match(await page.textContent('#error-message'), /policy/)
    t.equal(await page.getAttribute('#status', 'data-state'), 'open', 'connected anonymously')
  })

  let publicKey = ''
  await t.test('generate a key, authenticate, save and load a document', async (t) => {
    await page.click('#generate')
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

  t.same(problems, [], 'no console errors, no CSP violations')
})

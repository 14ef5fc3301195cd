import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The package's root: the nearest folder above this file with a package.json. The same from
 * the sources (`src/server/`, under the tests' TypeScript loader) and the build (`dist/src/server/`).
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('circles: cannot find the package root above the server module')
    dir = parent
  }
  return dir
}

const ROOT = packageRoot()

/** Every file the playground consists of, by URL path. Nothing else is served from disk. */
const ASSETS: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'playground/index.html', type: 'text/html; charset=utf-8' },
  '/playground/app.js': { file: 'playground/app.js', type: 'text/javascript; charset=utf-8' },
  '/playground/style.css': { file: 'playground/style.css', type: 'text/css; charset=utf-8' },
  '/playground/favicon.svg': { file: 'playground/favicon.svg', type: 'image/svg+xml' },
  // The client library's browser build: the page talks to the node through it, and nothing else.
  '/playground/circles-client.js': { file: 'dist/browser/circles-client.js', type: 'text/javascript; charset=utf-8' },
}

/** A Host header we may repeat in a header: a name or an address, and a port. */
const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/**
 * The page's Content-Security-Policy: its own scripts and styles only (no inline code), and
 * connections only to its own origin, over http(s) and ws(s).
 */
export function playgroundCsp(host: string | undefined, secure: boolean): string {
  const socket = host !== undefined && HOST_RE.test(host) ? ` ${secure ? 'wss' : 'ws'}://${host}` : ''
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${socket}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
}

export function isPlaygroundPath(path: string): boolean {
  return Object.hasOwn(ASSETS, path)
}

/** Files read once and kept: they are small and do not change while a node runs. */
const cache = new Map<string, Promise<Buffer>>()

/** Answer a GET/HEAD for one of {@link isPlaygroundPath}'s paths. */
export async function servePlayground(req: IncomingMessage, res: ServerResponse, path: string, secure: boolean): Promise<void> {
  const asset = ASSETS[path]!
  let body: Buffer
  try {
    let read = cache.get(asset.file)
    if (read === undefined) {
      read = readFile(join(ROOT, asset.file))
      cache.set(asset.file, read)
      read.catch(() => cache.delete(asset.file))
    }
    body = await read
  } catch {
    const text = `${asset.file} is missing: build the package (npm run build)\n`
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
    return
  }
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'content-security-policy': playgroundCsp(req.headers.host, secure),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
  })
  res.end(body)
}

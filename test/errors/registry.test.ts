import t from 'tap'
import { readFile } from 'node:fs/promises'
import {
  ERROR_CODES,
  ERROR_REGISTRY,
  asCirclesError,
  circlesError,
  isCirclesError,
  isErrorCode,
  toRpcError,
  toHttpError,
  closeCodeOf,
  WS_CLOSE,
} from '../../src/errors/index.js'

const STANDARD = new Set([-32700, -32600, -32601, -32602, -32603])

t.test('ERROR_REGISTRY', async (t) => {
  t.test('gives every wire error a standard code or one in -32000…-32099', async (t) => {
    for (const code of ERROR_CODES) {
      const { rpc } = ERROR_REGISTRY[code]
      if (rpc === null) continue
      t.ok(STANDARD.has(rpc) || (rpc <= -32000 && rpc >= -32099), `${code}: ${rpc}`)
    }
  })

  t.test('uses distinct application codes', async (t) => {
    const app = ERROR_CODES.map((c): number | null => ERROR_REGISTRY[c].rpc).filter((rpc): rpc is number => rpc !== null && !STANDARD.has(rpc))
    t.equal(new Set(app).size, app.length)
  })

  t.test('uses valid WebSocket close codes, only on errors that travel over a socket', async (t) => {
    const sent = new Set<number>(Object.values(WS_CLOSE).filter((c) => c !== WS_CLOSE.ABNORMAL && c !== WS_CLOSE.NORMAL))
    for (const code of ERROR_CODES) {
      const spec = ERROR_REGISTRY[code] as { close?: number; rpc: number | null }
      if (spec.close === undefined) continue
      t.ok(sent.has(spec.close), `${code}: ${spec.close} is a close code a node sends`)
      t.not(spec.rpc, null, `${code} travels over JSON-RPC`)
    }
  })

  t.test('closeCodeOf reads the close column', async (t) => {
    t.equal(closeCodeOf('INVALID_CREDENTIALS'), 1008)
    t.equal(closeCodeOf('SLOW_CONSUMER'), 1008)
    t.equal(closeCodeOf('RATE_LIMITED'), 1008)
    t.equal(closeCodeOf('SHUTTING_DOWN'), 1001)
    t.equal(closeCodeOf('IDLE_TIMEOUT'), 1001)
    t.equal(closeCodeOf('PAYLOAD_TOO_LARGE'), 1009)
    t.equal(closeCodeOf('OVERLOADED'), 1013)
    t.equal(circlesError('OVERLOADED').closeCode, 1013, 'and so does an error of that code')
    t.equal(circlesError('FORBIDDEN').closeCode, undefined, 'an error that never ends a connection has none')
  })

  t.test('is documented row by row in the error table of docs/errors.md', async (t) => {
    const readme = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    const rows = new Map<string, string>()
    const closes = new Map<string, string>()
    for (const line of readme.split('\n')) {
      const m = /^\| `([A-Z_]+)` \| (`-?\d+`|—) \|([^|]*)\|/.exec(line)
      if (m) {
        rows.set(m[1]!, m[2]!)
        closes.set(m[1]!, m[3]!.trim())
      }
    }
    for (const code of ERROR_CODES) {
      const close = (ERROR_REGISTRY[code] as { close?: number }).close
      // The column gives the code, then (in brackets) when the error ends the connection, if not always.
      t.equal(closes.get(code)?.split(' ')[0] ?? '', close === undefined ? '' : String(close), `docs/errors.md gives ${code} its close code`)
    }
    t.equal(closes.get('OVERLOADED'), '1013 (verifier only)', 'the verifier\'s overload closes, the mailbox\'s does not')
    for (const code of ERROR_CODES) {
      const row = rows.get(code)
      t.ok(row !== undefined, `docs/errors.md documents ${code}`)
      const rpc = ERROR_REGISTRY[code].rpc
      t.equal(row, rpc === null ? '—' : `\`${rpc}\``, `docs/errors.md gives ${code} its JSON-RPC code`)
    }
    for (const code of rows.keys()) t.ok(isErrorCode(code), `docs/errors.md row ${code} exists in the registry`)
  })
})

t.test('circlesError(code, message?, details?)', async (t) => {
  t.test('extends the base class the registry names', async (t) => {
    t.type(circlesError('INVALID_PARAMS'), TypeError)
    t.type(circlesError('OVERLOADED'), RangeError)
    t.type(circlesError('FORBIDDEN'), Error)
    t.notOk(circlesError('FORBIDDEN') instanceof TypeError)
  })

  t.test('carries code, rpc code, close code and details', async (t) => {
    const e = circlesError('INVALID_CREDENTIALS', undefined, { reason: 'mismatch' })
    t.match(e, { code: 'INVALID_CREDENTIALS', rpcCode: -32002, closeCode: 1008, message: ERROR_REGISTRY.INVALID_CREDENTIALS.message })
    t.same(toRpcError(e), {
      code: -32002,
      message: ERROR_REGISTRY.INVALID_CREDENTIALS.message,
      data: { code: 'INVALID_CREDENTIALS', reason: 'mismatch' },
    })
  })

  t.test('keeps data.code authoritative over details', async (t) => {
    t.equal(toRpcError(circlesError('FORBIDDEN', 'x', { code: 'OTHER' })).data.code, 'FORBIDDEN')
  })

  t.test('has one HTTP body shape: code, message, then the details as members', async (t) => {
    t.same(toHttpError(circlesError('RATE_LIMITED', 'slow down', { limit: 'connections', retry_after_ms: 10 })), {
      code: 'RATE_LIMITED',
      message: 'slow down',
      limit: 'connections',
      retry_after_ms: 10,
    })
    t.same(toHttpError(circlesError('NOT_FOUND', 'x', { code: 'OTHER', message: 'y' })), { code: 'NOT_FOUND', message: 'x' }, 'code and message are the error\'s own')
  })
})

t.test('asCirclesError(value)', async (t) => {
  const known = circlesError('OVERLOADED')
  t.equal(asCirclesError(known), known)
  const unknown = asCirclesError(new Error('secret host path /etc/x'))
  t.ok(isCirclesError(unknown))
  t.equal(unknown.code, 'INTERNAL_ERROR')
  t.notMatch(unknown.message, /etc/, 'does not leak the original message')
})

/**
 * workerModule: which file a worker starts from and with which flags — the built module beside a
 * built caller, the TypeScript source for a caller outside a package's src/ (no build to prefer),
 * and the refusal of a thread entry that has no build. The thread environment never carries
 * NODE_OPTIONS.
 */
import t from 'tap'
import { workerModule } from '../../src/threads/worker-url.js'

t.test('a built caller: the .js (or .cjs) beside it, with --no-node-snapshot', async (t) => {
  const saved = process.env['NODE_OPTIONS']
  process.env['NODE_OPTIONS'] = '--require /nowhere/preload.js'
  t.teardown(() => {
    if (saved === undefined) delete process.env['NODE_OPTIONS']
    else process.env['NODE_OPTIONS'] = saved
  })
  const esm = workerModule('file:///opt/circles/dist/src/sandbox/sandbox-pool.js', 'host-main')
  t.equal(esm.url, 'file:///opt/circles/dist/src/sandbox/host-main.js')
  t.ok(esm.execArgv.includes('--no-node-snapshot'))
  t.equal(esm.execArgv.filter((f) => f === '--no-node-snapshot').length, 1, 'the flag once')
  t.equal(esm.threadExecArgv, undefined)
  t.equal(esm.threadEnv['NODE_OPTIONS'], undefined, 'no preloads in threads')
  t.equal(process.env['NODE_OPTIONS'], '--require /nowhere/preload.js', "this process's environment is left as it is")
  const cjs = workerModule('file:///opt/circles/dist/src/verifier/verifier.js', 'thread-entry', 'commonjs')
  t.equal(cjs.url, 'file:///opt/circles/dist/src/verifier/thread-entry.cjs')
})

t.test('a TypeScript caller outside a src/ folder: the source for a process, a refusal for a thread', async (t) => {
  const process_ = workerModule('file:///tmp/elsewhere/pool.ts', 'child')
  t.equal(process_.url, 'file:///tmp/elsewhere/child.ts')
  t.ok(process_.execArgv.includes('--no-node-snapshot'))
  t.equal(process_.threadExecArgv, undefined)
  t.throws(() => workerModule('file:///tmp/elsewhere/pool.ts', 'thread-entry', 'commonjs'), {
    message: 'thread-entry: the compiled dist/ is missing or older than src/; run `npm run build` (worker threads load the build)',
  })
})

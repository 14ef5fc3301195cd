/**
 * installLastResort: the process-wide handlers are installed once for every node of the process
 * and removed with the last; an uncaught error is logged by every node's logger; a logger that
 * throws is not re-entered, and past 20 errors at once the rest are not logged. The handlers are
 * called as the process would call them (the test runner's own handlers are not disturbed).
 */
import t from 'tap'
import { installLastResort } from '../../src/node/last-resort.js'
import { captureLog } from '../helpers/log-capture.js'
import type { Logger } from '../../src/log/index.js'

type Handler = (error: unknown) => void

function added(event: 'uncaughtException' | 'unhandledRejection', before: Function[]): Handler[] {
  const now: Function[] = event === 'uncaughtException' ? process.listeners('uncaughtException') : process.listeners('unhandledRejection')
  return now.filter((l) => !before.includes(l)) as Handler[]
}

t.test('installed once, removed with the last logger', async (t) => {
  const beforeUncaught = process.listeners('uncaughtException')
  const beforeUnhandled = process.listeners('unhandledRejection')
  const a = captureLog('info')
  const b = captureLog('info')
  const uninstallA = installLastResort(a.logger)
  const uninstallB = installLastResort(b.logger)
  t.equal(added('uncaughtException', beforeUncaught).length, 1)
  t.equal(added('unhandledRejection', beforeUnhandled).length, 1)
  const [onUncaught] = added('uncaughtException', beforeUncaught)
  const [onUnhandled] = added('unhandledRejection', beforeUnhandled)
  onUncaught!(new Error('boom'))
  onUnhandled!(new Error('rejected'))
  for (const log of [a, b]) {
    t.match(log.lines, [
      { level: 50, msg: 'uncaught exception caught by the last-resort handler; the node keeps serving', err: { message: 'boom' } },
      { level: 50, msg: 'unhandled rejection caught by the last-resort handler; the node keeps serving', err: { message: 'rejected' } },
    ])
  }
  uninstallA()
  t.equal(added('uncaughtException', beforeUncaught).length, 1, 'still installed for the other node')
  onUncaught!(new Error('after A left'))
  t.equal(a.lines.length, 2, 'an uninstalled logger hears no more')
  t.equal(b.lines.length, 3)
  uninstallB()
  t.equal(added('uncaughtException', beforeUncaught).length, 0)
  t.equal(added('unhandledRejection', beforeUnhandled).length, 0)
})

t.test('a logger that throws is not re-entered, and does not stop the others', async (t) => {
  const before = process.listeners('uncaughtException')
  let calls = 0
  const failing = {
    error: () => {
      calls++
      throw new Error('the log destination is gone')
    },
  } as unknown as Logger
  const uninstallFailing = installLastResort(failing)
  const [handler] = added('uncaughtException', before)
  t.doesNotThrow(() => handler!(new Error('x')))
  t.equal(calls, 1, 'one attempt per error, not a loop')
  uninstallFailing()
})

t.test('at most 20 errors a second are logged; the rest are counted and reported in the next second', async (t) => {
  const before = process.listeners('uncaughtException')
  const log = captureLog('info')
  // Far past the process clock the earlier tests used: a new window starts at the first error.
  let now = performance.now() + 1e9
  const uninstall = installLastResort(log.logger, () => now)
  t.teardown(uninstall)
  const [handler] = added('uncaughtException', before)
  for (let i = 0; i < 25; i++) handler!(new Error(`e${i}`))
  t.equal(log.lines.length, 20)
  t.same(log.lines.map((l) => (l['err'] as { message: string }).message), Array.from({ length: 20 }, (_, i) => `e${i}`), 'the first 20')
  now += 1_000
  handler!(new Error('at exactly one second'))
  t.equal(log.lines.length, 20, 'the window is still the same one: counted, not logged')
  now += 1
  handler!(new Error('next window'))
  t.match(log.lines.slice(20), [
    { level: 50, msg: 'more uncaught errors were not logged (over 20 a second)', suppressed: 6 },
    { level: 50, err: { message: 'next window' } },
  ])
  now += 5_000
  handler!(new Error('later'))
  t.equal(log.lines.length, 23, 'nothing suppressed since: no count line')
})

import t from 'tap'
import { launchCli } from '../helpers/launched.js'
import type { LogLine } from '../helpers/log-capture.js'

/**
 * Escalation, never a hang: sandbox hosts that keep dying exceed the sandbox supervisor's
 * intensity, the root restarts the sandbox until its own intensity is exceeded, and the process
 * exits non-zero with a fatal line naming what failed. Run against the built command line
 * (`npm run build` first), the way an operator's service manager would see it.
 */

const EXIT_BOUND_MS = 60_000

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms (a hang)`)), ms)
    }),
  ])
}

const is =
  (msg: string, fields: Record<string, unknown> = {}) =>
  (line: LogLine) =>
    line.msg === msg && Object.entries(fields).every(([k, v]) => line[k] === v)

const ROOT_RESTART = is('restarting child', { supervisor: 'root', child: 'sandbox' })
const HOST_RESTART = is('restarting child', { supervisor: 'sandbox', child: 'host-0', counted: true })

/**
 * Resolves with the invariant a supervisor broke as soon as the log shows one restart more than
 * its intensity allows (the root's 3, the sandbox's 5); never, if the process exits first.
 */
function overIntensity(node: { lines: LogLine[]; waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine> }): Promise<string> {
  const nth = (match: (line: LogLine) => boolean, n: number, broken: string) =>
    node.waitFor((line) => match(line) && node.lines.filter(match).length >= n, 2_147_483_647).then(
      () => broken,
      () => new Promise<string>(() => {}),
    )
  return Promise.race([
    nth(ROOT_RESTART, 4, 'the root restarted the sandbox more often than its intensity (3)'),
    nth(HOST_RESTART, 6, 'the sandbox supervisor restarted host-0 more often than its intensity (5)'),
  ])
}

t.test('a crash-looping sandbox host: the failure climbs to the root and the process exits 1 with a fatal line naming it', async (t) => {
  const node = await launchCli(t, { circles: [{ name: 'loop', port: 0 }], env: { CIRCLES_TEST_FAULTS: 'host-crash-on-restart' } })
  const [pid] = node.serving['sandbox_pids'] as number[]
  t.ok(pid !== undefined && pid > 0, 'the first host started')
  process.kill(pid!, 'SIGKILL')
  const outcome = await within(Promise.race([node.exited, overIntensity(node)]), EXIT_BOUND_MS, 'the node')
  if (typeof outcome === 'string') {
    t.fail(`restart intensity invariant broken: ${outcome}`)
    return
  }
  const { code, signal } = outcome
  t.same({ code, signal }, { code: 1, signal: null }, 'exit code 1')

  const { lines } = node
  t.equal(lines.filter((l) => l.level === -1).length, 0, 'every stdout line is JSON')
  const sandboxGaveUp = lines.find(is('restart intensity exceeded: the supervisor gives up', { supervisor: 'sandbox' }))
  t.match(sandboxGaveUp, { level: 50, child: 'host-0', reason: /sandbox host 0 did not start: code 71: sandbox host: fault injected: host-crash-on-start/ })
  // The kill may land while the start-up probe runs (a death then blamed on the workload, not
  // counted): what is exact is the number of counted restarts.
  t.equal(lines.filter(HOST_RESTART).length, 5, 'the sandbox supervisor tried its intensity (5) times')
  t.ok(
    lines.some((l) => l.msg === 'sandbox host exited' && /fault injected: host-crash-on-start/.test(String(l['stderr']))),
    "each failed host is logged with the tail of its stderr",
  )
  t.equal(lines.filter(ROOT_RESTART).length, 3, 'the root restarted the sandbox its intensity (3) times')
  t.match(lines.find(is('restart intensity exceeded: the supervisor gives up', { supervisor: 'root' })), { level: 50, child: 'sandbox' })
  const fatal = lines.find((l) => l.level === 60)
  t.match(fatal, {
    msg: 'the root supervisor gave up: the node stops',
    err: { message: /^root: restart intensity exceeded \(3 in 60000 ms\); last: sandbox: sandbox host 0 did not start/ },
  })
  t.equal(lines.at(-1), fatal, 'the fatal line is the last word')
})

t.test('sandbox hosts that cannot start at all: the node refuses to start, says why, exits 1', async (t) => {
  const node = await launchCli(t, { circles: [{ name: 'never', port: 0 }], env: { CIRCLES_TEST_FAULTS: 'host-crash-on-start' }, waitForServing: false })
  const { code } = await within(node.exited, EXIT_BOUND_MS, 'the node')
  t.equal(code, 1)
  t.match(node.stderr(), /^circles: INTERNAL_ERROR: sandbox host 0 did not start: code 71: sandbox host: fault injected: host-crash-on-start\n$/)
  t.ok(node.lines.some((l) => l.msg === 'sandbox host exited' && /host-crash-on-start/.test(String(l['stderr']))), 'the host exit is logged')
  t.notOk(node.lines.some((l) => /^serving /.test(l.msg)), 'it never claimed to serve')
})

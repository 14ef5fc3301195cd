import type { Logger } from '../log/index.js'
import type { NodeMetrics } from '../metrics/index.js'
import type { SandboxHooks } from '../sandbox/index.js'
import type { LoadLimits } from '../limits/index.js'
import type { SupervisorEvent } from '../supervisor/index.js'

/** What the supervisors of the node report, logged and counted (docs/operations.md, "Logs"). */
export function supervisorEvents(log: Logger, metrics: () => NodeMetrics, hostPid: (index: number) => number | undefined): (event: SupervisorEvent) => void {
  return (event) => {
    const where = { supervisor: event.supervisor, child: event.id }
    switch (event.type) {
      case 'child_started':
        if (event.supervisor === 'sandbox') {
          log.info({ ...where, host_pid: hostPid(Number(event.id.slice('host-'.length))), restarts: event.restarts }, 'sandbox host started')
        } else if (event.supervisor !== 'peers' && !event.id.startsWith('conn-')) {
          log.debug(where, 'started')
        }
        return
      case 'child_exited':
        if (event.reason.type === 'error') {
          log.warn({ ...where, reason: event.reason.error.message, blame: event.reason.blame ?? 'infrastructure' }, 'child exited')
        }
        return
      case 'child_restarted':
        metrics().supervisorRestart(event.supervisor, event.id)
        log.warn({ ...where, counted: event.counted }, 'restarting child')
        return
      case 'escalated':
        metrics().supervisorEscalation(event.supervisor)
        log.error({ ...where, reason: event.reason.type === 'error' ? event.reason.error.message : 'normal exit' }, 'restart intensity exceeded: the supervisor gives up')
        return
    }
  }
}

/** Authentication failures are logged with the address, at most 10 a second (the rest counted). */
export function authFailureLog(log: Logger): (address: string, code: string) => void {
  const window = { logged: 0, suppressed: 0, start: 0 }
  return (address, code) => {
    const now = performance.now()
    if (now - window.start > 1_000) {
      if (window.suppressed > 0) log.warn({ suppressed: window.suppressed }, 'authentication failures not logged (over 10 a second)')
      window.start = now
      window.logged = 0
      window.suppressed = 0
    }
    if (window.logged++ < 10) log.warn({ remote: address, code }, 'authentication failed')
    else window.suppressed++
  }
}

/** What the sandbox tells the node: crashes quarantine their origin, refusals, host exits (logged). */
export function sandboxHooks(log: Logger, load: LoadLimits, metrics: () => NodeMetrics, onSupervisorEvent: (event: SupervisorEvent) => void): SandboxHooks {
  return {
    onCrash: (run) => {
      // A run a call started answers in the calling context: that context sent the script.
      const circle = run.callingContext ?? run.circle
      const { originMs, origins, circleMs } = load.crashed(circle, run.origin ?? '')
      // The caller's key is logged for the operator; it takes no part in the blame (keys cost nothing).
      log.warn(
        { circle, remote: run.origin ?? null, caller: run.caller || null, backoff_ms: originMs, origins, ...(circleMs === undefined ? {} : { circle_backoff_ms: circleMs }) },
        circleMs === undefined
          ? 'a script crashed its sandbox host: its origin is quarantined in the circle'
          : 'a script crashed its sandbox host: crashes from several origins quarantine the whole circle',
      )
    },
    refuse: (run) => {
      const refusal = load.refusal(run.callingContext ?? run.circle, run.origin ?? '')
      if (refusal === undefined) return undefined
      metrics().limited('quarantine')
      // The same data as a refusal at the gateway: the limit and when to retry.
      const { limit, retry_after_ms: retryAfterMs } = refusal.details as { limit: string; retry_after_ms: number }
      return { code: 'RATE_LIMITED', message: refusal.message, body: `"limit":${JSON.stringify(limit)},"retry_after_ms":${retryAfterMs},"logs":[]`, runMs: 0, cpuMs: 0, callsMs: 0 }
    },
    onHostExit: (host, exit, blame) => {
      if (blame === 'none') return
      log.warn({ host, code: exit.code, signal: exit.signal, blame, stderr: exit.stderrTail.slice(-2000) }, 'sandbox host exited')
    },
    onHostStderr: (host, line) => log.warn({ host, line: line.slice(0, 1000) }, 'sandbox host stderr'),
    onHostHung: (host, silentMs) => log.error({ host, silent_ms: Math.round(silentMs) }, 'sandbox host hung (no answer past its run limits): killed'),
    onSupervisorEvent,
  }
}

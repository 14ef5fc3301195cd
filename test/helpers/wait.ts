import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Resolves once `condition()` holds, checking it every few milliseconds; rejects after
 * `timeoutMs` naming `what`. For states nothing announces (a file appearing, a socket closed on
 * the server's side): the test waits for the state itself, not for a guessed delay.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(5)
  }
}

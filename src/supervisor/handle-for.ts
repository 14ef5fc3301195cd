import type { ChildHandle, ExitReason } from './child-spec.js'
import { ExitListeners } from './exit-listeners.js'

/**
 * A ChildHandle for a service with async `close()` (a pool, a server): `stop()` closes it, `kill()`
 * closes it without waiting, and `exit(reason)` reports an exit the service noticed itself.
 */
export function handleFor(close: () => Promise<void>, kill: () => void = () => void close()) {
  const exits = new ExitListeners()
  const exit = (reason: ExitReason) => void exits.exit(reason)
  const handle: ChildHandle & { exit: (reason: ExitReason) => void } = {
    async stop() {
      await close()
      exit({ type: 'normal' })
    },
    kill() {
      kill()
      exit({ type: 'error', error: new Error('killed') })
    },
    onExit(listener) {
      exits.add(listener)
    },
    exit,
  }
  return handle
}

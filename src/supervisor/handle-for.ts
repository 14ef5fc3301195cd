import type { ChildHandle, ExitReason } from './child-spec.js'

/**
 * A ChildHandle for a service with async `close()` (a pool, a server): `stop()` closes it, `kill()`
 * closes it without waiting, and `exit(reason)` reports an exit the service noticed itself.
 */
export function handleFor(close: () => Promise<void>, kill: () => void = () => void close()) {
  const listeners: ((reason: ExitReason) => void)[] = []
  let exited = false
  const exit = (reason: ExitReason) => {
    if (exited) return
    exited = true
    for (const listener of listeners.splice(0)) listener(reason)
  }
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
      if (exited) return
      listeners.push(listener)
    },
    exit,
  }
  return handle
}

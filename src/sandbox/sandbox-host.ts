/**
 * Entry point of a sandbox host process: a piscina pool of one isolated-vm worker thread (the
 * same as a `thread` host), driven by its parent over the IPC channel.
 *
 * Why a process of its own: some allocations inside an isolate (a Map or an array growing past
 * the heap limit in one step) make V8 abort the whole process instead of throwing, whatever
 * isolated-vm's memory limit. In a separate process such an abort costs the runs this host had
 * in flight — answered WORKER_CRASHED by the parent, which starts a new host — and never the node.
 */
import type { HostReply, HostRequest } from './host-messages.js'
import { openHost } from './host-channel.js'

const host = openHost('thread', {
  onReply: (reply: HostReply) => process.send?.(reply),
  onExit: () => process.exit(1),
})

process.on('message', (message: HostRequest) => {
  switch (message.type) {
    case 'run':
      host.send(message)
      break
    case 'close':
      void host.close(0).then(() => process.exit(0))
      break
  }
})

// The parent decides when this host stops (it drains first). A Ctrl-C in a terminal, or a
// service manager signalling the whole process group, reaches this process too: ignore it.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {})
// The parent going away (crash, SIGKILL) must not leave this process behind.
process.on('disconnect', () => process.exit(0))

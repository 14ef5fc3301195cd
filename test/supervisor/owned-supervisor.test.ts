import t from 'tap'
import { ExitListeners, Supervisor, type ChildHandle } from '../../src/supervisor/index.js'

// A child that owns a supervisor (the sandbox pool, the peer host) is shown nested in the tree,
// and a child being stopped is still found through its supervisor until it has stopped.

/** A worker whose stop waits until the test lets it finish. */
function slowWorker() {
  const exits = new ExitListeners()
  let finish: () => void = () => {}
  const stopped = new Promise<void>((resolve) => (finish = resolve))
  let asked: () => void = () => {}
  const stopAsked = new Promise<void>((resolve) => (asked = resolve))
  const handle: ChildHandle = {
    stop: async () => {
      asked()
      await stopped
      exits.exit({ type: 'normal' })
    },
    kill: () => void exits.exit({ type: 'error', error: new Error('killed') }),
    onExit: (listener) => exits.add(listener),
  }
  return { handle, finish, stopAsked }
}

t.test('a child that owns a supervisor is drawn as one, with its children', async (t) => {
  const inner = new Supervisor({ id: 'inner', flags: { strategy: 'one_for_one', intensity: 2, periodMs: 1_000 }, children: [{ id: 'w', restart: 'permanent', shutdown: 100, start: () => slowWorker().handle }] })
  const owner: ChildHandle = {
    stop: () => inner.stop(),
    kill: () => inner.kill(),
    onExit: (listener) => inner.onExit(listener),
    tree: () => inner.tree(),
  }
  const root = new Supervisor({ id: 'root', children: [{ id: 'pool', restart: 'permanent', shutdown: 1_000, start: async () => (await inner.start(), owner) }] })
  await root.start()
  t.match(root.tree().children, [{ id: 'inner', type: 'supervisor', restart: 'permanent', status: 'running', strategy: 'one_for_one', intensity: 2, children: [{ id: 'w', type: 'worker' }] }])
  t.equal(root.child('pool'), owner)
  await root.stop()
  t.match(inner.tree(), { state: 'stopped' }, 'stopping the owner stopped its supervisor')
})

t.test('a child being stopped is found until it has stopped', async (t) => {
  const worker = slowWorker()
  const root = new Supervisor({ id: 'root', children: [{ id: 'slow', restart: 'permanent', shutdown: 60_000, start: () => worker.handle }] })
  await root.start()
  const stopping = root.stop()
  await worker.stopAsked
  t.equal(root.child('slow'), worker.handle, 'found while it drains')
  worker.finish()
  await stopping
  t.equal(root.child('slow'), undefined, 'gone once stopped')
})

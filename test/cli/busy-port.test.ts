import t from 'tap'
import { createServer, type Server } from 'node:net'
import { launchCli } from '../helpers/launched.js'

// A port some other process holds stops a launch at once with ADDRESS_IN_USE, naming the
// listener, the address and what to do — not INTERNAL_ERROR with a bare EADDRINUSE.

async function holdPort(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

t.test("the admin listener's port is taken", async (t) => {
  const port = await holdPort(t)
  const node = await launchCli(t, { circles: [{ name: 'alice', port: 0 }], args: ['--admin-port', String(port)], waitForServing: false })
  const { code } = await node.exited
  t.equal(code, 1)
  t.equal(
    node.stderr(),
    `circles: ADDRESS_IN_USE: the admin listener cannot listen on 127.0.0.1:${port}: the port is in use (by another circles process?); ` +
      'give it another port with --admin-port N (0: any free port), or run without it: --no-admin\n',
  )
})

t.test("a circle's port is taken", async (t) => {
  const port = await holdPort(t)
  const node = await launchCli(t, { circles: [{ name: 'alice', port }], waitForServing: false })
  const { code } = await node.exited
  t.equal(code, 1)
  t.equal(
    node.stderr(),
    `circles: ADDRESS_IN_USE: the listener of circle "alice" cannot listen on 127.0.0.1:${port}: the port is in use (by another circles process?); ` +
      'give the circle another port in circles.json (0: any free port), or stop the process that holds it\n',
  )
})

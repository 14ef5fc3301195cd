import t from 'tap'
import { ExitListeners, type ExitReason } from '../../src/supervisor/index.js'

t.test('ExitListeners', async (t) => {
  t.test('calls each listener registered before the exit once, with its reason', async (t) => {
    const exits = new ExitListeners()
    const heard: [string, ExitReason][] = []
    exits.add((reason) => heard.push(['a', reason]))
    exits.add((reason) => heard.push(['b', reason]))
    t.equal(exits.exited, false)
    t.same(heard, [], 'nothing before the exit')
    t.equal(exits.exit({ type: 'normal' }), true)
    t.equal(exits.exited, true)
    t.same(heard, [['a', { type: 'normal' }], ['b', { type: 'normal' }]])
  })

  t.test('calls a listener registered after the exit at once, with the same reason', async (t) => {
    const exits = new ExitListeners()
    const error = new Error('boom')
    exits.exit({ type: 'error', error })
    const heard: ExitReason[] = []
    exits.add((reason) => heard.push(reason))
    t.equal(heard.length, 1, 'the late listener was called during add')
    t.equal(heard[0]!.type, 'error')
    t.equal((heard[0] as { error: Error }).error, error)
  })

  t.test('counts the first exit only: a later one reaches nobody and changes no reason', async (t) => {
    const exits = new ExitListeners()
    const heard: ExitReason[] = []
    exits.add((reason) => heard.push(reason))
    exits.exit({ type: 'normal' })
    t.equal(exits.exit({ type: 'error', error: new Error('late') }), false)
    t.same(heard, [{ type: 'normal' }], 'the early listener heard one exit')
    exits.add((reason) => heard.push(reason))
    t.same(heard, [{ type: 'normal' }, { type: 'normal' }], 'a late listener hears the first reason')
  })

  t.test('a listener registered by a listener during the exit is called too', async (t) => {
    const exits = new ExitListeners()
    const heard: string[] = []
    exits.add(() => {
      heard.push('outer')
      exits.add(() => heard.push('inner'))
    })
    exits.exit({ type: 'normal' })
    t.same(heard, ['outer', 'inner'])
  })
})

import { assign, fromPromise, setup } from 'xstate'
import type { PeerContext, PeerEvent, PeerInput } from './events.js'

/**
 * A peer context's lifecycle (docs/contexts.md, "Contexts"):
 *
 *   idle ──WORK──▶ processing ──mailbox drained──▶ idle ──(idle timeout)──▶ passivated
 *   (idle timeout while subscribers watch the context: idle again, the timeout starts over)
 *   STOP: idle → stopped; in processing, what is running finishes first, then → stopped
 *
 * In `processing` the `drainMailbox` actor (the `drain` function of the input) hands the mailbox to the
 * sandbox in ordered batches — several may be in flight; the sandbox runs them in order, one
 * script at a time — until the mailbox is empty and every batch has answered. Each task goes
 * pending → processing → completed | error (tracked on the task: the machine works per drain,
 * not per task, so its cost is not paid on every request).
 */
export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as PeerInput,
  },
  actors: {
    drainMailbox: fromPromise<void, { readonly drain: () => Promise<void> }>(({ input }) => input.drain()),
  },
  delays: {
    passivateAfter: ({ context }) => context.passivateAfterMs,
  },
  guards: {
    isStopRequested: ({ context }) => context.stopRequested,
    isWatched: ({ context }) => context.watched(),
  },
  actions: {
    countDrain: assign({ drains: ({ context }) => context.drains + 1 }),
    requestStop: assign({ stopRequested: true }),
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({
    passivateAfterMs: input.passivateAfterMs,
    drain: input.drain,
    watched: input.watched ?? (() => false),
    drains: 0,
    stopRequested: false,
  }),
  initial: 'idle',
  states: {
    idle: {
      // A watched context keeps its change log (and its subscribers their place in it).
      after: { passivateAfter: [{ guard: 'isWatched', target: 'idle', reenter: true }, { target: 'passivated' }] },
      on: {
        WORK: 'processing',
        STOP: 'stopped',
      },
    },
    processing: {
      invoke: {
        src: 'drainMailbox',
        input: ({ context }) => ({ drain: context.drain }),
        onDone: [
          { guard: 'isStopRequested', target: 'stopped', actions: 'countDrain' },
          { target: 'idle', actions: 'countDrain' },
        ],
        onError: [{ guard: 'isStopRequested', target: 'stopped' }, { target: 'idle' }],
      },
      // Running batches are never abandoned: stopping waits for them.
      on: { STOP: { actions: 'requestStop' } },
    },
    passivated: { type: 'final' },
    stopped: { type: 'final' },
  },
})

export type PeerMachine = typeof peerMachine

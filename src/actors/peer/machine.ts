import { assign, fromPromise, setup } from 'xstate'
import type { BatchOutput, PeerContext, PeerEvent, PeerInput } from './events.js'

/**
 * A peer context's lifecycle (DESIGN §6). One batch of tasks runs at a time, in mailbox order:
 *
 *   idle ──WORK──▶ processing ──done, mailbox empty──▶ idle ──(idle timeout)──▶ passivated
 *                   ▲      │ done, more queued
 *                   └──────┘
 *   STOP: idle → stopped; in processing the running batch finishes first, then → stopped
 *
 * Each task in a batch goes pending → processing → completed | error (tracked on the task; the
 * machine works at batch granularity so that its cost is paid once per batch, not per task).
 * The machine is pure: the `runBatch` actor the wiring provides takes the batch from the mailbox
 * and runs it in the sandbox.
 */
export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as PeerInput,
  },
  actors: {
    // Replaced by the wiring (actor.ts).
    runBatch: fromPromise<BatchOutput>(async () => ({ more: false })),
  },
  delays: {
    passivateAfter: ({ context }) => context.passivateAfterMs,
  },
  guards: {
    hasMoreWork: (_, output: BatchOutput) => output.more,
    isStopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    countBatch: assign({ batches: ({ context }) => context.batches + 1 }),
    requestStop: assign({ stopRequested: true }),
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({ passivateAfterMs: input.passivateAfterMs, batches: 0, stopRequested: false }),
  initial: 'idle',
  states: {
    idle: {
      after: { passivateAfter: 'passivated' },
      on: {
        WORK: 'processing',
        STOP: 'stopped',
      },
    },
    processing: {
      invoke: {
        src: 'runBatch',
        onDone: [
          { guard: 'isStopRequested', target: 'stopped', actions: 'countBatch' },
          {
            guard: { type: 'hasMoreWork', params: ({ event }) => event.output },
            target: 'processing',
            reenter: true,
            actions: 'countBatch',
          },
          { target: 'idle', actions: 'countBatch' },
        ],
        onError: [{ guard: 'isStopRequested', target: 'stopped' }, { target: 'idle' }],
      },
      // The running batch is never abandoned: stopping waits for it.
      on: { STOP: { actions: 'requestStop' } },
    },
    passivated: { type: 'final' },
    stopped: { type: 'final' },
  },
})

export type PeerMachine = typeof peerMachine

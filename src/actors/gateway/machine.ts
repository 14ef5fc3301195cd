import { assign, fromPromise, setup } from 'xstate'
import { closeCodeOf, isCirclesError, type ClosingErrorCode } from '../../errors/index.js'
import { sameClaimant } from '../../identity/index.js'
import type { GatewayContext, GatewayEvent, GatewayInput, VerifyOutput, VerifyRequest } from './events.js'

/**
 * A connection's auth lifecycle (docs/protocol.md, "A connection's life"):
 *
 *   open.connected ──NONCE_ISSUED──▶ open.nonceIssued ──(nonce TTL)──▶ open.nonceExpired
 *        │                               │ AUTHENTICATE (same key or address)
 *        │                               ▼
 *        │                          open.verifying ──valid──▶ open.authenticated
 *        └── AUTHENTICATE / invalid / expired ──▶ closing ──SOCKET_CLOSED──▶ closed
 *
 * Every authenticate attempt consumes the nonce; every failed one closes the connection. From
 * any `open` state, IDLE and SHUTDOWN close it, and CUT (a send budget was over) with its code.
 * Each close carries the close code the error registry gives its error code (closeCodeOf).
 * The machine is pure: signature checks run in the `verifySignature` actor, through the `verify`
 * function its input carries (the verifier thread, in the wiring).
 */
export const gatewayMachine = setup({
  types: {
    context: {} as GatewayContext,
    events: {} as GatewayEvent,
    input: {} as GatewayInput,
  },
  actors: {
    verifySignature: fromPromise<VerifyOutput, VerifyRequest>(({ input }) =>
      input.verify({ nonce: input.nonce, claimant: input.claimant, signature: input.signature }),
    ),
  },
  delays: {
    nonceTtl: ({ context }) => context.nonceTtlMs,
  },
  guards: {
    isNonceForKey: ({ context, event }) =>
      event.type === 'AUTHENTICATE' && context.nonce !== null && sameClaimant(context.nonce.claimant, event.claimant),
    isSignatureValid: (_, output: VerifyOutput) => output.ok,
  },
  actions: {
    rememberNonce: assign({
      nonce: ({ event }) => (event.type === 'NONCE_ISSUED' ? { value: event.nonce, claimant: event.claimant } : null),
    }),
    startVerifying: assign({
      verifying: ({ context, event }) =>
        event.type === 'AUTHENTICATE' && context.nonce !== null
          ? { requestId: event.requestId, claimant: event.claimant, signature: event.signature, nonce: context.nonce.value }
          : null,
      nonce: null,
    }),
    // The caller is the key the signature recovered: for an address claim, the only key known.
    authenticate: assign({
      caller: (_, params: { output: VerifyOutput }) => (params.output.ok ? params.output.publicKey : null),
      answered: ({ context }) => context.verifying?.requestId,
      verifying: null,
    }),
    failWith: assign({
      close: ({ context, event }, params: { code: ClosingErrorCode }) => ({
        code: params.code,
        wsCode: closeCodeOf(params.code),
        requestId: event.type === 'AUTHENTICATE' ? event.requestId : context.verifying?.requestId,
      }),
      nonce: null,
      verifying: null,
    }),
    failVerification: assign({
      close: ({ context }, params: { error: unknown }) => {
        const code = isCirclesError(params.error) && params.error.code === 'OVERLOADED' ? 'OVERLOADED' : 'INTERNAL_ERROR'
        return {
          code,
          wsCode: closeCodeOf(code),
          requestId: context.verifying?.requestId,
        }
      },
      verifying: null,
    }),
    goAway: assign({
      close: (_, params: { code: ClosingErrorCode }) => ({ code: params.code, wsCode: closeCodeOf(params.code) }),
    }),
    cut: assign({
      close: ({ event }) => {
        const code = event.type === 'CUT' ? event.code : 'SLOW_CONSUMER'
        return { code, wsCode: closeCodeOf(code) }
      },
    }),
  },
}).createMachine({
  id: 'gateway',
  context: ({ input }) => ({
    nonceTtlMs: input.nonceTtlMs,
    verify: input.verify,
    nonce: null,
    verifying: null,
    caller: null,
    answered: undefined,
    close: null,
  }),
  initial: 'open',
  states: {
    open: {
      initial: 'connected',
      on: {
        IDLE: { target: 'closing', actions: { type: 'goAway', params: { code: 'IDLE_TIMEOUT' } } },
        SHUTDOWN: { target: 'closing', actions: { type: 'goAway', params: { code: 'SHUTTING_DOWN' } } },
        CUT: { target: 'closing', actions: 'cut' },
        SOCKET_CLOSED: 'closed',
      },
      states: {
        connected: {
          on: {
            NONCE_ISSUED: { target: 'nonceIssued', actions: 'rememberNonce' },
            AUTHENTICATE: { target: '#gateway.closing', actions: { type: 'failWith', params: { code: 'NONCE_UNKNOWN' } } },
          },
        },
        nonceIssued: {
          after: { nonceTtl: 'nonceExpired' },
          on: {
            NONCE_ISSUED: { target: 'nonceIssued', reenter: true, actions: 'rememberNonce' },
            AUTHENTICATE: [
              { guard: 'isNonceForKey', target: 'verifying', actions: 'startVerifying' },
              { target: '#gateway.closing', actions: { type: 'failWith', params: { code: 'NONCE_UNKNOWN' } } },
            ],
          },
        },
        nonceExpired: {
          on: {
            NONCE_ISSUED: { target: 'nonceIssued', actions: 'rememberNonce' },
            AUTHENTICATE: [
              {
                guard: 'isNonceForKey',
                target: '#gateway.closing',
                actions: { type: 'failWith', params: { code: 'NONCE_EXPIRED' } },
              },
              { target: '#gateway.closing', actions: { type: 'failWith', params: { code: 'NONCE_UNKNOWN' } } },
            ],
          },
        },
        verifying: {
          invoke: {
            src: 'verifySignature',
            input: ({ context }) => ({
              verify: context.verify,
              nonce: context.verifying?.nonce ?? '',
              claimant: context.verifying?.claimant ?? { type: 'pubkey', pubkey: '' },
              signature: context.verifying?.signature ?? '',
            }),
            onDone: [
              {
                guard: { type: 'isSignatureValid', params: ({ event }) => event.output },
                target: 'authenticated',
                actions: { type: 'authenticate', params: ({ event }) => ({ output: event.output }) },
              },
              { target: '#gateway.closing', actions: { type: 'failWith', params: { code: 'INVALID_CREDENTIALS' } } },
            ],
            onError: { target: '#gateway.closing', actions: { type: 'failVerification', params: ({ event }) => ({ error: event.error }) } },
          },
        },
        authenticated: {},
      },
    },
    closing: {
      on: { SOCKET_CLOSED: 'closed' },
    },
    closed: { type: 'final' },
  },
})

export type GatewayMachine = typeof gatewayMachine

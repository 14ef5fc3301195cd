export { gatewayMachine, type GatewayMachine } from './machine.js'
export type { GatewayEvent, GatewayContext, GatewayInput, CloseIntent, VerifyInput, VerifyOutput, VerifyRequest } from './events.js'
export { GatewayConnection, type GatewayLimits, type GatewayServices, type GatewayTarget } from './actor.js'

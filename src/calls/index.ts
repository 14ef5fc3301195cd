export { CallRouter, type CallRouterOptions, type CalleeRequest } from './call-router.js'
export { checkCallRequest, type CallRequest, type CallLimits } from './call-request.js'
export { ChainBudgets } from './chain-budgets.js'

export type {
  JsonRpcId,
  MethodParams,
  MethodResults,
  MethodName,
  ClaimParams,
  Call,
  FrameEntry,
  ParsedFrame,
  PlayResult,
  SubscribePosition,
  Response,
  SuccessResponse,
  ErrorResponse,
} from './messages.js'
export { parseFrame, type FrameLimits } from './parse-frame.js'
export { parseParams, isMethodName, scriptSizeError, METHOD_NAMES, type MethodLimits } from './methods.js'
export { errorResponse } from './responses.js'
export { encodePlayAnswer, playResultOf, failedRun, type RunOutcome, type RunReceipt } from './play-answer.js'

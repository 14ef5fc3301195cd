export {
  DEFAULT_POLICY,
  parsePolicy,
  canRun,
  canSubscribe,
  runRefusal,
  canCall,
  canWrite,
  refusal,
  admitsAnonymous,
  type Policy,
  type RunRule,
  type WriteRule,
} from './policy.js'
export { readPolicy, writePolicy, policyPath } from './policy-file.js'

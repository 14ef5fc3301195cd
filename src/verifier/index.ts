export { Verifier, type VerifierOptions } from './verifier-pool.js'

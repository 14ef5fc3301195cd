export { Faults, faultsFromEnv, FAULT_NAMES, FAULT_MARKER, FAULTS_ENV, type FaultName } from './faults.js'

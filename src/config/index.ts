export { DEFAULTS } from './defaults.js'

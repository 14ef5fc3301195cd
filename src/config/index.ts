export { DEFAULTS } from './defaults.js'
export { VERSION } from './version.js'
export { positiveIntegerOption } from './options.js'

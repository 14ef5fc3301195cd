export { DEFAULTS } from './defaults.js'
export { VERSION } from './version.js'
export { positiveIntegerOption } from './options.js'
export { isPositiveInteger, parsePositiveInteger } from './positive-integer.js'

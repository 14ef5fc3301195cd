export { launch, keyPathFor, type LaunchOptions, type Launched } from './launch.js'
export { readCirclesConfig, parseCirclesConfig, type CircleConfig } from './circles-config.js'

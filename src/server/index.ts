export { CircleServer, type CircleServerOptions } from './circle-server.js'

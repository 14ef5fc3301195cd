export { CircleServer, type CircleServerOptions, type PublicHealth } from './circle-server.js'
export { AdminServer, type AdminServerOptions } from './admin-server.js'

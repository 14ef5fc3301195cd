export { CircleServer, type CircleServerOptions, type TlsCredentials } from './circle-server.js'
export { playgroundCsp } from './playground.js'

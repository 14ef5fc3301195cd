export { CircleServer, type CircleServerOptions, type PublicHealth, type TlsCredentials } from './circle-server.js'
export { AdminServer, type AdminServerOptions } from './admin-server.js'
export { playgroundCsp } from './playground.js'
export { HostRules, parseDomains, parseOrigins, type Domain, type Site, type Fail } from './host-rules.js'

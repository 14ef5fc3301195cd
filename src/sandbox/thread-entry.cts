// The file piscina starts in a sandbox host's script thread. It is CommonJS on purpose: piscina
// loads a task file with require() first, and Node 20's require() of an ES module aborts the
// whole process (a V8 fatal error, no exception) when the thread is terminated while that module
// is being linked — a host stopped just after it started. A CommonJS file needs no linking, and
// the dynamic import below takes Node's asynchronous loader, which a terminating thread leaves
// cleanly. The `__esModule` mark makes piscina read the named handler (`default`, or `serve`
// for a process host), a promise it awaits once and caches.
Object.defineProperty(exports, '__esModule', { value: true })
const worker = import('./worker.js')
exports.default = worker.then((loaded) => loaded.default)
exports.serve = worker.then((loaded) => loaded.serve)

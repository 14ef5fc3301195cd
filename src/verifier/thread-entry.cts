// The file piscina starts in the verifier's threads; CommonJS for the reason given in
// src/sandbox/thread-entry.cts (Node 20 aborts when a thread is terminated while require()
// links an ES module).
Object.defineProperty(exports, '__esModule', { value: true })
exports.default = import('./worker.js').then((loaded) => loaded.default)

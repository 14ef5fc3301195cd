export { workerModule, type WorkerModule } from './worker-url.js'
export { nameThisThread, THREAD_NAMES } from './thread-name.js'

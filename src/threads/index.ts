export { workerUrl, workerModule, type WorkerModule } from './worker-url.js'

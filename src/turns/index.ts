export { TurnBatch } from './turn-batch.js'

export { Metrics, Counter, Gauge, Histogram } from './metrics.js'

export { NodeMetrics, type MetricSources } from './node-metrics.js'

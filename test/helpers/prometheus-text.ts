export { parsePrometheusText, scrape, seriesOf, valueOf, type MetricFamily, type MetricType, type Sample } from '../../src/metrics/exposition-text.js'

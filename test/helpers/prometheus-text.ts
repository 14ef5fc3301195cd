/** The strict Prometheus text parser lives with the soak that reads metrics too. */
export { parsePrometheusText, scrape, seriesOf, valueOf, type MetricFamily, type MetricType, type Sample } from '../../bench/lib/prometheus-text.js'

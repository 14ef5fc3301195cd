/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), shared by the tests
 * and the soak: what a scraper would accept, and more — it throws on anything a scraper might
 * take differently (a sample before its TYPE, a family split in two, a duplicate series, a
 * histogram whose buckets do not add up). It reads the node's own /metrics; it is not part of
 * the package's public API.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface MetricFamily {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  readonly samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped']

function fail(line: number, message: string): never {
  throw new Error(`exposition line ${line}: ${message}`)
}

/** A value as Go's ParseFloat reads it (what Prometheus uses): NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: number): number {
  const lower = text.toLowerCase()
  if (lower === 'nan') return Number.NaN
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY
  if (lower === '-inf') return Number.NEGATIVE_INFINITY
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(line, `bad value "${text}"`)
  return Number(text)
}

/** Labels `{a="x",b="y"}` starting at `text[0] === '{'`; returns them and the rest of the line. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {}
  let i = 1
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) }
    const eq = text.indexOf('=', i)
    if (eq < 0) fail(line, 'label without "="')
    const name = text.slice(i, eq)
    if (!LABEL_NAME.test(name) || name.startsWith('__')) fail(line, `bad label name "${name}"`)
    if (Object.hasOwn(labels, name)) fail(line, `label "${name}" twice`)
    if (text[eq + 1] !== '"') fail(line, `label "${name}" value is not quoted`)
    let value = ''
    let j = eq + 2
    for (;;) {
      const c = text[j]
      if (c === undefined) fail(line, 'unterminated label value')
      if (c === '"') break
      if (c === '\\') {
        const n = text[j + 1]
        if (n === '\\') value += '\\'
        else if (n === '"') value += '"'
        else if (n === 'n') value += '\n'
        else fail(line, `bad escape "\\${n}" in a label value`)
        j += 2
        continue
      }
      value += c
      j++
    }
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
    else if (text[i] !== '}') fail(line, 'labels must be separated by ","')
  }
}

/** The family a sample belongs to (a histogram's `_bucket`, `_sum` and `_count` are its own). */
function familyOf(name: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  const direct = families.get(name)
  if (direct !== undefined) return direct
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue
    const family = families.get(name.slice(0, -suffix.length))
    if (family === undefined) continue
    if (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket')) return family
  }
  return undefined
}

function checkHistogram(family: MetricFamily): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>()
  for (const s of family.samples) {
    const { le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    let entry = series.get(key)
    if (entry === undefined) series.set(key, (entry = { buckets: [] }))
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without "le"`)
      entry.buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), s.value])
    } else if (s.name.endsWith('_sum')) entry.sum = s.value
    else if (s.name.endsWith('_count')) entry.count = s.value
    else throw new Error(`${family.name}: a plain sample in a histogram`)
  }
  for (const [key, entry] of series) {
    const where = `${family.name}${key}`
    if (entry.sum === undefined || entry.count === undefined) throw new Error(`${where}: _sum or _count missing`)
    const last = entry.buckets.at(-1)
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket last`)
    if (last[1] !== entry.count) throw new Error(`${where}: the +Inf bucket (${last[1]}) is not _count (${entry.count})`)
    for (let i = 1; i < entry.buckets.length; i++) {
      if (!(entry.buckets[i]![0] > entry.buckets[i - 1]![0])) throw new Error(`${where}: bucket bounds not ascending`)
      if (entry.buckets[i]![1] < entry.buckets[i - 1]![1]) throw new Error(`${where}: bucket counts not cumulative`)
    }
  }
}

/** Parse an exposition; throws naming the line on anything malformed. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (!text.endsWith('\n')) throw new Error('an exposition ends with a line feed')
  const families = new Map<string, MetricFamily>()
  const seen = new Set<string>()
  const helps = new Map<string, string>()
  let current: MetricFamily | undefined
  const lines = text.split('\n')
  lines.pop()
  for (const [index, raw] of lines.entries()) {
    const line = index + 1
    if (raw.trim() === '') continue
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw)
      if (m === null) continue // a plain comment
      const [, kind, name, rest = ''] = m
      if (!METRIC_NAME.test(name!)) fail(line, `bad metric name "${name}"`)
      if (kind === 'HELP') {
        if (helps.has(name!)) fail(line, `HELP of ${name} twice`)
        helps.set(name!, rest)
        const family = families.get(name!)
        if (family !== undefined) (family as { help: string }).help = rest
        continue
      }
      if (!(TYPES as readonly string[]).includes(rest)) fail(line, `bad type "${rest}"`)
      if (families.has(name!)) fail(line, `TYPE of ${name} twice`)
      current = { name: name!, type: rest as MetricType, help: helps.get(name!) ?? '', samples: [] }
      families.set(name!, current)
      continue
    }
    const nameEnd = raw.search(/[{ ]/)
    if (nameEnd <= 0) fail(line, 'a sample without a value')
    const name = raw.slice(0, nameEnd)
    if (!METRIC_NAME.test(name)) fail(line, `bad metric name "${name}"`)
    let labels: Record<string, string> = {}
    let rest = raw.slice(nameEnd)
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line))
    const parts = rest.trim().split(/ +/)
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) fail(line, 'expected " value [timestamp]" after the name')
    const value = parseValue(parts[0]!, line)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(line, `bad timestamp "${parts[1]}"`)
    const family = familyOf(name, families)
    if (family === undefined) fail(line, `sample ${name} has no TYPE before it`)
    if (family !== current) fail(line, `sample ${name} is apart from the rest of its family ${family.name}`)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) fail(line, `series ${key} twice`)
    seen.add(key)
    if (family.type === 'counter' && !(value >= 0)) fail(line, `counter ${name} is ${value}`)
    family.samples.push({ name, labels, value })
  }
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family)
  return families
}

/**
 * The value of one series (labels matched exactly), or 0 when the series is absent — a counter
 * nobody incremented yet is not exported.
 */
export function valueOf(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort())
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value
    }
  }
  return 0
}

/** Scrape a node's admin `/metrics` and parse it. */
export async function scrape(adminUrl: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${adminUrl}/metrics`)
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`)
  return parsePrometheusText(await res.text())
}

/** Every series of `name` with its labels (empty when absent). */
export function seriesOf(families: Map<string, MetricFamily>, name: string): Sample[] {
  const out: Sample[] = []
  for (const family of families.values()) for (const s of family.samples) if (s.name === name) out.push(s)
  return out
}

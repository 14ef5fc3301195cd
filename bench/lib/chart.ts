/** A dependency-free SVG line chart: one panel per metric, one line per series, log-scaled x. */
export interface Series {
  readonly name: string
  readonly points: readonly (readonly [number, number])[]
}

export interface Panel {
  readonly title: string
  readonly yLabel: string
  readonly series: readonly Series[]
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']
const W = 520
const H = 320
const M = { left: 70, right: 20, top: 40, bottom: 50 }

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1
  const exp = 10 ** Math.floor(Math.log10(value))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp
  return 10 * exp
}

function panel(p: Panel, offsetX: number): string {
  const xs = [...new Set(p.series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b)
  const ymax = niceMax(Math.max(...p.series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite), 0))
  const lx = (x: number) => Math.log10(Math.max(x, 1))
  const [x0, x1] = [lx(xs[0] ?? 1), lx(xs[xs.length - 1] ?? 10)]
  const px = (x: number) => offsetX + M.left + ((lx(x) - x0) / (x1 - x0 || 1)) * (W - M.left - M.right)
  const py = (y: number) => M.top + (1 - y / ymax) * (H - M.top - M.bottom)
  const out: string[] = []
  out.push(`<text x="${offsetX + W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(p.title)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const y = (ymax * i) / 4
    out.push(`<line x1="${offsetX + M.left}" x2="${offsetX + W - M.right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`)
    out.push(`<text x="${offsetX + M.left - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${Math.round(y).toLocaleString('en-US')}</text>`)
  }
  for (const x of xs) {
    out.push(`<text x="${px(x)}" y="${H - M.bottom + 18}" text-anchor="middle" font-size="11">${x}</text>`)
  }
  out.push(`<text x="${offsetX + W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">connections</text>`)
  out.push(`<text x="${offsetX + 16}" y="${H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${offsetX + 16} ${H / 2})">${escape(p.yLabel)}</text>`)
  p.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]
    const pts = s.points.filter(([, y]) => Number.isFinite(y))
    out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`)
    for (const [x, y] of pts) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${colour}"/>`)
    out.push(`<rect x="${offsetX + M.left + 10}" y="${M.top + 6 + i * 16}" width="10" height="10" fill="${colour}"/>`)
    out.push(`<text x="${offsetX + M.left + 26}" y="${M.top + 15 + i * 16}" font-size="11">${escape(s.name)}</text>`)
  })
  return out.join('\n')
}

/** Render panels side by side as one SVG document. */
export function renderChart(panels: readonly Panel[]): string {
  const width = W * panels.length
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    ...panels.map((p, i) => panel(p, i * W)),
    '</svg>',
  ].join('\n')
}

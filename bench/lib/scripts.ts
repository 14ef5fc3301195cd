/** Scripts the benchmarks run. */
export const SCRIPTS = {
  /** The smallest useful script. */
  trivial: '1 + 1',
  /** About 1 KB of source doing a little of everything a real script does. */
  small: `
// A small but realistic script: build a record, transform it, summarise it.
const visitor = { key: CALLER_PUBLIC_KEY.slice(0, 16), circle: CIRCLE_PUBLIC_KEY.slice(0, 16) };
const items = [];
for (let i = 0; i < 20; i++) {
  items.push({ id: i, label: 'item-' + i, score: (i * 37) % 11, tags: ['a', 'b', 'c'].slice(0, i % 3 + 1) });
}
const ranked = items
  .filter((item) => item.score > 3)
  .map((item) => ({ ...item, weight: item.score * item.tags.length }))
  .sort((a, b) => b.weight - a.weight || a.id - b.id);
const totals = ranked.reduce((acc, item) => {
  for (const tag of item.tags) acc[tag] = (acc[tag] || 0) + item.weight;
  return acc;
}, {});
const summary = {
  visitor,
  count: ranked.length,
  best: ranked.slice(0, 3).map((item) => item.label),
  totals,
  checksum: JSON.stringify(ranked).length,
};
// A final expression is the script's result.
summary;
`,
} as const

/** A play whose script calls `callee` (another context of the node) and returns its value. */
export function callingScript(callee: string): string {
  return `(async () => await call('${callee}', '1 + 1'))()`
}

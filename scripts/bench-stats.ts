// What both benchmarks (and the chart) compute from samples, one definition each: nearest-rank quantiles,
// rounding, and a value read from the netplugin's /metrics text.

export interface Stats {
  median: number;
  p90: number;
  p99: number;
  n: number;
}

export const say = (s = '') => process.stdout.write(`${s}\n`);

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** The nearest-rank q-quantile of ascending `sorted` (the median of an even count is the lower middle). */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return { median: round(quantile(s, 0.5)), p90: round(quantile(s, 0.9)), p99: round(quantile(s, 0.99)), n: s.length };
}

/** A sample's value in Prometheus text (any labels), or NaN when it is absent. */
export const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1]);

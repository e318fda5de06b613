// The picture of a bench run: per-exec latency distributions, one panel per operation, one row per program.
// Every sample is a dot; the box spans p25..p75 with the median as a bar. Plain SVG, no dependencies.
import { quantile } from './bench-stats';

export interface Series {
  label: string;
  samples: number[];
  color: string;
}

export interface Panel {
  title: string;
  series: Series[];
}

const ROW = 34;
const LEFT = 320;
const WIDTH = 1000;
const PLOT = WIDTH - LEFT - 30;
const TITLE = 26;
const AXIS = 34;

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round upper bound for the axis and its tick step. */
function axis(max: number): { top: number; step: number } {
  const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000];
  const step = steps.find((s) => max / s <= 8) ?? 1000;
  return { top: Math.ceil(max / step) * step, step };
}

export function latencyChart(heading: string, panels: Panel[]): string {
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.samples));
  const { top, step } = axis(Math.max(1, ...all));
  const x = (ms: number) => LEFT + (ms / top) * PLOT;
  const out: string[] = [];
  let y = 40;
  out.push(`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(heading)}</text>`);
  for (const panel of panels) {
    out.push(`<text x="10" y="${y + 16}" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`);
    y += TITLE;
    const panelTop = y;
    for (const s of panel.series) {
      const sorted = [...s.samples].sort((a, b) => a - b);
      const mid = y + ROW / 2;
      const [p25, p50, p75] = [0.25, 0.5, 0.75].map((q) => quantile(sorted, q));
      out.push(`<text x="${LEFT - 8}" y="${mid + 4}" text-anchor="end" font-size="12">${escapeXml(s.label)} (median ${p50.toFixed(1)} ms)</text>`);
      out.push(
        `<rect x="${x(p25).toFixed(1)}" y="${mid - 9}" width="${Math.max(1, x(p75) - x(p25)).toFixed(1)}" height="18" ` +
          `fill="${s.color}" fill-opacity="0.18" stroke="${s.color}"/>`,
      );
      out.push(`<line x1="${x(p50).toFixed(1)}" x2="${x(p50).toFixed(1)}" y1="${mid - 12}" y2="${mid + 12}" stroke="${s.color}" stroke-width="3"/>`);
      sorted.forEach((ms, i) => {
        // a deterministic jitter spreads equal samples vertically
        const jitter = ((i * 7919) % 13) - 6;
        out.push(`<circle cx="${x(ms).toFixed(1)}" cy="${mid + jitter}" r="2.2" fill="${s.color}" fill-opacity="0.7"/>`);
      });
      y += ROW;
    }
    for (let t = 0; t <= top; t += step) {
      out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${panelTop}" y2="${y}" stroke="#ccc" stroke-width="0.5"/>`);
      out.push(`<text x="${x(t).toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="11">${t}</text>`);
    }
    out.push(`<text x="${LEFT + PLOT / 2}" y="${y + 28}" text-anchor="middle" font-size="11">ms per exec, whole process, measured from the parent</text>`);
    y += AXIS + 8;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif">`;
  return [svg, '<rect width="100%" height="100%" fill="white"/>', ...out, '</svg>', ''].join('\n');
}

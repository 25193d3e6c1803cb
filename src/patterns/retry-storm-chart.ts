// The retry storm as one hand-written SVG: a panel per strategy, bars of call arrivals per bucket on a
// shared time axis, the end of the outage marked, and when the last client got through. No scripts, no
// web fonts, no external references: it opens anywhere, offline.
import type { StormResult } from './retry-storm.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS: Record<string, string> = { none: '#c0392b', exponential: '#d68910', full: '#1e8449', equal: '#2471a3', decorrelated: '#7d3c98' };

export interface StormChartOptions {
  title?: string;
  /** A note under the title, e.g. that the time axis was scaled. */
  subtitle?: string;
}

export function renderStormSvg(results: readonly StormResult[], options: StormChartOptions = {}): string {
  const W = 900;
  const left = 150;
  const right = 30;
  const panelH = 90;
  const gap = 28;
  const top = 70;
  const plotW = W - left - right;
  const bucketMs = results[0]?.config.bucketMs ?? 100;
  const buckets = Math.max(1, ...results.map((r) => r.arrivals.length));
  const spanMs = buckets * bucketMs;
  const H = top + results.length * (panelH + gap) + 40;
  const x = (ms: number) => left + (ms / spanMs) * plotW;
  const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${Math.round(ms)} ms`);
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(options.title ?? 'Retry storm: call arrivals per bucket')}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(options.title ?? 'Retry storm: call arrivals per bucket')}</text>`);
  const cfg = results[0]?.config;
  const sub = options.subtitle ?? (cfg ? `${cfg.clients} clients; server ${cfg.outage === 'refuse' ? 'refuses' : 'fails'} for ${fmt(cfg.outageMs)}, then serves ${cfg.capacityPerBucket} calls per ${fmt(cfg.bucketMs)} bucket` : '');
  out.push(`<text x="${left}" y="44" fill="#555555">${esc(sub)}</text>`);
  results.forEach((r, i) => {
    const y0 = top + i * (panelH + gap);
    const peak = Math.max(1, ...r.arrivals);
    const color = COLORS[r.strategy] ?? '#333333';
    const done = r.allSucceededMs === undefined ? `${r.failedClients} clients never succeeded` : `all succeeded after ${fmt(r.allSucceededMs)}`;
    out.push(`<g class="series" data-strategy="${esc(r.strategy)}" data-total-calls="${r.totalCalls}">`);
    out.push(`<text x="${left - 10}" y="${y0 + 16}" text-anchor="end" font-weight="bold" fill="${color}">${esc(r.strategy)}</text>`);
    out.push(`<text x="${left - 10}" y="${y0 + 32}" text-anchor="end" fill="#555555">${r.totalCalls} calls</text>`);
    out.push(`<text x="${left - 10}" y="${y0 + 48}" text-anchor="end" fill="#555555">peak ${peak}/bucket</text>`);
    out.push(`<rect x="${left}" y="${y0}" width="${plotW}" height="${panelH}" fill="#f7f7f7" stroke="#dddddd"/>`);
    const bw = Math.max(1, plotW / buckets - 1);
    r.arrivals.forEach((v, b) => {
      if (v === 0) return;
      const h = (v / peak) * (panelH - 4);
      out.push(`<rect class="bar" x="${x(b * bucketMs).toFixed(1)}" y="${(y0 + panelH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${fmt(b * bucketMs)}: ${v} calls</title></rect>`);
    });
    if (cfg) {
      const ox = x(cfg.outageMs).toFixed(1);
      out.push(`<line x1="${ox}" y1="${y0}" x2="${ox}" y2="${y0 + panelH}" stroke="#000000" stroke-dasharray="4 3"/>`);
    }
    if (r.allSucceededMs !== undefined) {
      const dx = x(r.allSucceededMs).toFixed(1);
      out.push(`<line x1="${dx}" y1="${y0}" x2="${dx}" y2="${y0 + panelH}" stroke="${color}" stroke-width="2"/>`);
    }
    out.push(`<text x="${left + plotW}" y="${y0 - 5}" text-anchor="end" fill="#555555">${esc(done)}</text>`);
    out.push(`</g>`);
  });
  const axisY = top + results.length * (panelH + gap) - gap + 16;
  const step = spanMs > 4000 ? 1000 : spanMs > 1500 ? 500 : spanMs > 600 ? 200 : 100;
  for (let ms = 0; ms <= spanMs; ms += step) out.push(`<text x="${x(ms).toFixed(1)}" y="${axisY}" text-anchor="middle" fill="#555555">${fmt(ms)}</text>`);
  out.push(`<text x="${left}" y="${axisY + 20}" fill="#555555">dashed line: end of the outage; solid line: the last client succeeded; bars: call arrivals per ${fmt(bucketMs)} (each panel scaled to its own peak)</text>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}

// Lab 13: the retry storm. 200 clients call a server that fails (or refuses) for its first 2 seconds and
// then serves a limited number of calls per 100 ms. The same clients retry with no backoff, exponential
// backoff without jitter, and full, equal and decorrelated jitter; per strategy we count the calls that
// arrive in each 100 ms bucket, the calls in all, and when the last client got through.
import { writeFileSync } from 'node:fs';
import { runLab, parseChoice, parseIntOption, parseNumberOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { BACKOFF_STRATEGIES, type BackoffStrategy } from '../src/client/retry.ts';
import { FULL_STORM, runStorm, scaleStorm, sparkline, type StormConfig, type StormResult } from '../src/patterns/retry-storm.ts';
import { renderStormSvg } from '../src/patterns/retry-storm-chart.ts';

/** The demo runs the storm at a quarter of real time so the five runs fit in the tour. */
const DEMO_SCALE = 0.25;

const spec = {
  name: '13-retry-storm',
  summary: 'retry storms: no backoff vs exponential vs full/equal/decorrelated jitter against a recovering server',
  commands: {
    demo: `all five strategies, time axis scaled x${DEMO_SCALE} (outage ${FULL_STORM.outageMs * DEMO_SCALE} ms, ${FULL_STORM.bucketMs * DEMO_SCALE} ms buckets)`,
    run: `all five strategies at full size (${FULL_STORM.outageMs / 1000} s outage, ${FULL_STORM.bucketMs} ms buckets; about 20 s)`,
  },
  options: {
    svg: { type: 'string', description: 'also write the histograms as one SVG chart to FILE', valueName: 'FILE' },
    strategy: { type: 'string', description: `run only these (comma-separated: ${BACKOFF_STRATEGIES.join(', ')})`, valueName: 'LIST' },
    clients: { type: 'string', description: `number of clients (default ${FULL_STORM.clients})`, valueName: 'N' },
    outage: { type: 'string', default: 'fail', description: 'during the outage the server answers errors (fail) or is not listening (refuse)', valueName: 'fail|refuse' },
    scale: { type: 'string', description: `multiply every duration (default: demo ${DEMO_SCALE}, run 1)`, valueName: 'X' },
    seed: { type: 'string', description: 'seed for the jitter (repeatable runs); default: Math.random', valueName: 'N' },
  },
  dissector: { tcp: 'wirelab' },
} as const;

type Ctx = LabContext<typeof spec.options>;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function configFrom(ctx: Ctx, defaultScale: number): { config: StormConfig; scale: number } {
  const scale = parseNumberOption('scale', ctx.values.scale, { min: 0.05, max: 10, default: defaultScale })!;
  const clients = parseIntOption('clients', ctx.values.clients, { min: 1, max: 2000, default: FULL_STORM.clients })!;
  const outage = parseChoice('outage', ctx.values.outage, ['fail', 'refuse'] as const, 'fail');
  return { config: { ...scaleStorm(FULL_STORM, scale), clients, outage, host: ctx.common.host, port: ctx.common.port }, scale };
}

function strategies(ctx: Ctx): BackoffStrategy[] {
  if (!ctx.values.strategy) return [...BACKOFF_STRATEGIES];
  const list = ctx.values.strategy.split(',').map((s) => s.trim());
  for (const s of list) if (!(BACKOFF_STRATEGIES as readonly string[]).includes(s)) throw new UsageError(`--strategy: unknown strategy '${s}' (${BACKOFF_STRATEGIES.join(', ')})`);
  return list as BackoffStrategy[];
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);

async function storm(ctx: Ctx, defaultScale: number): Promise<number> {
  const { out } = ctx;
  const { config, scale } = configFrom(ctx, defaultScale);
  const seed = parseIntOption('seed', ctx.values.seed, { min: 0, max: 2 ** 32 - 1 });
  const list = strategies(ctx);
  out.heading('The retry storm');
  out.say(`${config.clients} clients, each on its own TCP connection, call a server on loopback that ${config.outage === 'refuse' ? 'refuses connections' : 'answers ERROR 101 (unavailable)'}`);
  out.say(`for its first ${ms(config.outageMs)}, then serves ${config.capacityPerBucket} calls per ${ms(config.bucketMs)} and answers the rest ERROR 102 (over capacity).`);
  out.say(`Backoff base ${ms(config.baseMs)}, cap ${ms(config.capMs)}; a client gives up after ${ms(config.deadlineMs)}.`);
  if (scale !== 1) out.say(out.c.yellow(`Every duration is scaled x${scale} so the demo is short: read ${ms(config.bucketMs)} buckets as ${ms(config.bucketMs / scale)} (full size: \`run\`).`));
  const results: StormResult[] = [];
  for (const strategy of list) {
    const r = await runStorm(strategy, config, { recorder: ctx.recorder, random: seed === undefined ? undefined : seeded(seed + results.length) });
    results.push(r);
    out.event('strategy', {
      strategy, totalCalls: r.totalCalls, allSucceededMs: r.allSucceededMs === undefined ? null : Math.round(r.allSucceededMs),
      failedClients: r.failedClients, bucketMs: config.bucketMs, arrivals: r.arrivals, successes: r.successes,
    }, `  ${strategy.padEnd(13)} ran: ${r.totalCalls} calls, ${r.allSucceededMs === undefined ? `${r.failedClients} clients never succeeded` : `all succeeded after ${ms(r.allSucceededMs)}`}`);
  }
  // The histograms: one row per strategy, one character per bucket, each row scaled to its own peak.
  const buckets = Math.max(...results.map((r) => r.arrivals.length));
  const width = 60;
  const per = Math.max(1, Math.ceil(buckets / width));
  out.heading(`Call arrivals per ${ms(config.bucketMs * per)}${per > 1 ? ` (${per} buckets per character, the highest shown)` : ''}`);
  const outageCol = Math.floor(config.outageMs / config.bucketMs / per);
  out.raw(`${' '.repeat(16)}${'^'.padStart(outageCol + 1)} end of outage (${ms(config.outageMs)})\n`);
  for (const r of results) {
    const peak = Math.max(1, ...r.arrivals);
    const padded = [...r.arrivals, ...Array(buckets - r.arrivals.length).fill(0)];
    out.raw(`  ${r.strategy.padEnd(13)} ${sparkline(padded, peak, width)}  peak ${peak}\n`);
  }
  out.raw(`${' '.repeat(16)}0${' '.repeat(Math.max(0, Math.ceil(buckets / per) - 2 - ms(buckets * config.bucketMs).length))} ${ms(buckets * config.bucketMs)}\n`);
  out.heading('Summary');
  out.raw(`  ${'strategy'.padEnd(13)} ${'calls'.padStart(8)} ${'peak/bucket'.padStart(12)} ${'all succeeded after'.padStart(20)}\n`);
  for (const r of results) {
    out.raw(`  ${r.strategy.padEnd(13)} ${String(r.totalCalls).padStart(8)} ${String(Math.max(...r.arrivals)).padStart(12)} ${(r.allSucceededMs === undefined ? `${r.failedClients} never` : ms(r.allSucceededMs)).padStart(20)}\n`);
  }
  out.say('');
  out.say('No backoff turns the outage into a flood of calls; exponential backoff without jitter keeps the clients in');
  out.say('lockstep, so they return in waves that overrun the recovered capacity; jitter spreads them out.');
  if (ctx.values.svg) {
    const subtitle = scale !== 1 ? `${config.clients} clients; outage ${ms(config.outageMs)}, ${config.capacityPerBucket} calls per ${ms(config.bucketMs)} after it (all durations scaled x${scale})` : undefined;
    writeFileSync(ctx.values.svg, renderStormSvg(results, { subtitle }));
    out.event('svg', { file: ctx.values.svg }, `wrote the chart to ${ctx.values.svg}`);
  }
  return results.some((r) => r.lateAttempts > 0) ? 1 : 0;
}

await runLab(spec, {
  demo: (ctx) => storm(ctx, DEMO_SCALE),
  run: (ctx) => storm(ctx, 1),
});

// Short polling: POST /jobs answers 202 at once with the job's id and a Location; the client then asks
// GET /jobs/:id every --interval until the job is done. Most answers say "still running": that is the cost.
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { HTTP_LIMIT_OPTIONS, JOB_LIMIT_OPTIONS, httpLimitsFrom, jobLimitsFrom } from '../src/patterns/http-options.ts';
import { startJobsServer } from '../src/patterns/jobs-api.ts';
import { HttpClient } from '../src/patterns/http-client.ts';
import { watchShortPolling, type WatchResult } from '../src/patterns/job-watchers.ts';
import type { JobView } from '../src/patterns/jobs.ts';

const DEMO_JOB_MS = 3_000;

const spec = {
  name: '05-short-polling',
  summary: 'short polling a timed job over the hand-written HTTP/1.1 core',
  commands: {
    demo: `server and client on loopback, one ${DEMO_JOB_MS / 1000}-second job polled to completion`,
    server: 'serve POST /jobs and GET /jobs/:id',
    client: 'create a job (or watch ID) and poll it until done',
  },
  usage: ['client --port P [--interval MS] [ID]'],
  dissector: { tcp: 'http' }, // npm run capture and --pcap: decode the server's port as HTTP
  options: {
    ...HTTP_LIMIT_OPTIONS,
    ...JOB_LIMIT_OPTIONS,
    'job-ms': { type: 'string', description: `how long each job runs (default 10000; the demo uses ${DEMO_JOB_MS} to stay short)`, valueName: 'MS' },
    interval: { type: 'string', default: '1000', description: 'client: ms between polls', valueName: 'MS' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

function describe(v: JobView): string {
  return v.state === 'done' ? `done, result ${JSON.stringify(v.result)}` : `running, progress ${Math.round(v.progress * 100)}%`;
}

async function client(ctx: Ctx, port: number, id?: string): Promise<WatchResult> {
  const { out } = ctx;
  const interval = parseIntOption('interval', ctx.values.interval, { min: 1, max: 600_000 })!;
  const host = ctx.common.host;
  if (!id) {
    const setup = new HttpClient(host, port, { recorder: ctx.recorder });
    const res = await setup.request('POST', '/jobs');
    setup.destroy();
    id = res.json<{ id: string }>().id;
    out.event('created', { status: res.status, id, location: res.header('location') }, `POST /jobs -> ${res.status} ${res.reason}, Location: ${res.header('location')}`);
  }
  const r = await watchShortPolling(id, interval, {
    host, port, recorder: ctx.recorder,
    onUpdate: (v, n) => out.event('poll', { n, state: v.state, progress: v.progress }, `  poll #${n}: GET /jobs/${id} -> 200 ${describe(v)}`),
  });
  out.event('result', { requests: r.requests, bytesOut: r.bytesOut, bytesIn: r.bytesIn, lagMs: Math.round(r.lagMs) },
    `${r.requests} requests (${r.requests - 1} said "still running"), ${r.bytesOut} bytes sent, ${r.bytesIn} received; ` +
    `learnt of completion ${Math.round(r.lagMs)} ms after it happened (interval ${interval} ms)`);
  return r;
}

await runLab(spec, {
  async demo(ctx) {
    const jobMs = parseIntOption('job-ms', ctx.values['job-ms'], { min: 1, max: 3_600_000, default: DEMO_JOB_MS })!;
    parseIntOption('interval', ctx.values.interval, { min: 1, max: 600_000 }); // a bad value fails before the server starts
    const srv = await startJobsServer({ host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(ctx.values), ...jobLimitsFrom(ctx.values), jobMs });
    announceListening(ctx.out, 'http', srv.address);
    ctx.out.say(`a ${jobMs} ms job, polled every ${ctx.values.interval} ms (server default --job-ms is 10000; the demo runs ${jobMs})`);
    try {
      await client(ctx, srv.address.port);
      const missing = new HttpClient(ctx.common.host, srv.address.port);
      const res = await missing.request('GET', '/jobs/ffffffffffff');
      missing.destroy();
      ctx.out.event('unknown', { status: res.status }, `GET /jobs/ffffffffffff -> ${res.status} ${res.reason} (unknown id)`);
    } finally {
      await srv.close();
    }
  },
  async server(ctx) {
    const jobMs = parseIntOption('job-ms', ctx.values['job-ms'], { min: 1, max: 3_600_000, default: 10_000 })!;
    const srv = await startJobsServer({ host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(ctx.values), ...jobLimitsFrom(ctx.values), jobMs });
    announceListening(ctx.out, 'http', srv.address);
    await ctx.untilSignal();
    await srv.close();
  },
  async client(ctx) {
    if (ctx.common.port === undefined) throw new UsageError('client needs --port');
    await client(ctx, ctx.common.port, ctx.positionals[0]);
  },
});

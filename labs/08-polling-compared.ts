// The comparison run: one job, watched at the same time by short polling, long polling and server-sent
// events, each on its own connections. For each: requests made, bytes on the wire both ways (counted on the
// client's own sockets), and how late it learnt that the job was done. Every figure comes from this run.
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { HTTP_LIMIT_OPTIONS, JOB_LIMIT_OPTIONS, httpLimitsFrom, jobLimitsFrom } from '../src/patterns/http-options.ts';
import { startJobsServer } from '../src/patterns/jobs-api.ts';
import { HttpClient } from '../src/patterns/http-client.ts';
import { watchShortPolling, watchLongPolling, watchEvents, type WatchResult } from '../src/patterns/job-watchers.ts';

const spec = {
  name: '08-polling-compared',
  summary: 'the same job watched by short polling, long polling and server-sent events, measured side by side',
  commands: {
    demo: 'server and three watchers on loopback, one 10-second job (about 11 s)',
    compare: 'run the three watchers against a running jobs server (labs 05/06 server) with --port',
  },
  dissector: { tcp: 'http' }, // npm run capture and --pcap: decode the server's port as HTTP
  options: {
    ...HTTP_LIMIT_OPTIONS,
    ...JOB_LIMIT_OPTIONS,
    'job-ms': { type: 'string', default: '10000', description: 'how long the job runs', valueName: 'MS' },
    interval: { type: 'string', default: '1000', description: 'short polling: ms between polls', valueName: 'MS' },
    wait: { type: 'string', default: '30', description: 'long polling: seconds the server may hold a poll', valueName: 'S' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

async function compare(ctx: Ctx, port: number): Promise<void> {
  const { out } = ctx;
  const host = ctx.common.host;
  const interval = parseIntOption('interval', ctx.values.interval, { min: 1, max: 600_000 })!;
  const waitS = parseIntOption('wait', ctx.values.wait, { min: 1, max: 3600 })!;
  const setup = new HttpClient(host, port, { recorder: ctx.recorder });
  const created = await setup.request('POST', '/jobs');
  setup.destroy();
  if (created.status !== 202) throw new Error(`POST /jobs: HTTP ${created.status}`);
  const id = created.json<{ id: string }>().id;
  out.event('created', { id }, `job ${id} created; three watchers start now (short polling every ${interval} ms, long polling wait=${waitS} s, SSE)`);
  const o = { host, port, recorder: ctx.recorder };
  const results: WatchResult[] = await Promise.all([
    watchShortPolling(id, interval, o),
    watchLongPolling(id, waitS, o),
    watchEvents(id, o),
  ]);
  const rows = results.map((r) => ({
    method: r.method, requests: r.requests, connections: r.connections, bytesOut: r.bytesOut, bytesIn: r.bytesIn,
    total: r.bytesOut + r.bytesIn, lagMs: Math.round(r.lagMs * 10) / 10,
  }));
  if (out.json) {
    for (const r of rows) out.event('watcher', r);
    return;
  }
  const head = ['watcher', 'requests', 'connections', 'bytes sent', 'bytes received', 'bytes total', 'knew after done'];
  const cells = rows.map((r) => [r.method, String(r.requests), String(r.connections), String(r.bytesOut), String(r.bytesIn), String(r.total), `${r.lagMs.toFixed(1)} ms`]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  out.raw('\n' + line(head) + '\n' + line(widths.map((w) => '-'.repeat(w))) + '\n' + cells.map(line).join('\n') + '\n\n');
  out.say('bytes are what each watcher\'s own sockets carried (TCP payload, HTTP heads included); "knew after done" is the client\'s');
  out.say('time of learning minus the server\'s completion time (same machine, same clock). Short polling pays one');
  out.say('round trip per interval and learns up to an interval late; long polling and SSE learn within a scheduling delay.');
}

await runLab(spec, {
  async demo(ctx) {
    const jobMs = parseIntOption('job-ms', ctx.values['job-ms'], { min: 1, max: 3_600_000 })!;
    const srv = await startJobsServer({ host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(ctx.values), ...jobLimitsFrom(ctx.values), jobMs });
    announceListening(ctx.out, 'http', srv.address);
    try {
      await compare(ctx, srv.address.port);
    } finally {
      await srv.close();
    }
  },
  async compare(ctx) {
    if (ctx.common.port === undefined) throw new UsageError('compare needs --port of a running jobs server');
    await compare(ctx, ctx.common.port);
  },
});

// Long polling: the same jobs API, but GET /jobs/:id?wait=S is held by the server until the job changes
// state or S seconds pass. The server has no polling loop: a held request is a callback on the job, woken by
// the state change itself; a client that hangs up while waiting is removed at once.
import net from 'node:net';
import { once } from 'node:events';
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { HTTP_LIMIT_OPTIONS, JOB_LIMIT_OPTIONS, httpLimitsFrom, jobLimitsFrom } from '../src/patterns/http-options.ts';
import { startJobsServer } from '../src/patterns/jobs-api.ts';
import { HttpClient } from '../src/patterns/http-client.ts';
import { watchLongPolling, type WatchResult } from '../src/patterns/job-watchers.ts';
import { nowMs, type JobView } from '../src/patterns/jobs.ts';
import { tapSocket } from '../src/trace/recorder.ts';
import { httpAnnotator } from '../src/wire/http.ts';

const DEMO_JOB_MS = 3_000;

const spec = {
  name: '06-long-polling',
  summary: 'long polling a timed job: the server holds GET /jobs/:id?wait=S until the job changes state',
  commands: {
    demo: `server and clients on loopback: a ${DEMO_JOB_MS / 1000}-second job, several waiters, one that hangs up`,
    server: 'serve POST /jobs and GET /jobs/:id[?wait=S]',
    client: 'create a job (or watch ID) and long-poll it until done',
  },
  usage: ['client --port P [--wait S] [ID]'],
  dissector: { tcp: 'http' }, // npm run capture and --pcap: decode the server's port as HTTP
  options: {
    ...HTTP_LIMIT_OPTIONS,
    ...JOB_LIMIT_OPTIONS,
    'job-ms': { type: 'string', description: `how long each job runs (default 10000; the demo uses ${DEMO_JOB_MS})`, valueName: 'MS' },
    wait: { type: 'string', default: '30', description: 'client: seconds the server may hold each poll', valueName: 'S' },
    'max-wait': { type: 'string', default: '60', description: 'server: longest hold, whatever ?wait= asks', valueName: 'S' },
    waiters: { type: 'string', default: '3', description: 'demo: extra clients waiting on the same job', valueName: 'N' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

function describe(v: JobView): string {
  return v.state === 'done' ? `done, result ${JSON.stringify(v.result)}` : `running, progress ${Math.round(v.progress * 100)}%`;
}

async function createJob(ctx: Ctx, port: number): Promise<string> {
  const setup = new HttpClient(ctx.common.host, port, { recorder: ctx.recorder });
  const res = await setup.request('POST', '/jobs');
  setup.destroy();
  const id = res.json<{ id: string }>().id;
  ctx.out.event('created', { status: res.status, id }, `POST /jobs -> ${res.status} ${res.reason}, Location: ${res.header('location')}`);
  return id;
}

async function watch(ctx: Ctx, port: number, id: string, waitS: number): Promise<WatchResult> {
  const started = nowMs();
  const r = await watchLongPolling(id, waitS, {
    host: ctx.common.host, port, recorder: ctx.recorder,
    onUpdate: (v, n) => ctx.out.event('poll', { n, state: v.state, heldMs: Math.round(nowMs() - started) },
      `  poll #${n}: GET /jobs/${id}?wait=${waitS} answered after ${((nowMs() - started) / 1000).toFixed(2)} s: ${describe(v)}`),
  });
  ctx.out.event('result', { requests: r.requests, bytesOut: r.bytesOut, bytesIn: r.bytesIn, lagMs: Math.round(r.lagMs) },
    `${r.requests} requests, ${r.bytesOut} bytes sent, ${r.bytesIn} received; learnt of completion ${r.lagMs.toFixed(1)} ms after it happened`);
  return r;
}

await runLab(spec, {
  async demo(ctx) {
    const jobMs = parseIntOption('job-ms', ctx.values['job-ms'], { min: 1, max: 3_600_000, default: DEMO_JOB_MS })!;
    const waiters = parseIntOption('waiters', ctx.values.waiters, { min: 0, max: 1000 })!;
    const waitS = parseIntOption('wait', ctx.values.wait, { min: 0, max: 3600 })!;
    const srv = await startJobsServer({ host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(ctx.values), ...jobLimitsFrom(ctx.values), jobMs });
    announceListening(ctx.out, 'http', srv.address);
    const { out } = ctx;
    const port = srv.address.port;
    try {
      const id = await createJob(ctx, port);
      out.heading(`${waiters} clients hold GET /jobs/${id}?wait=${waitS}, one more hangs up while waiting`);
      const clients = Array.from({ length: waiters }, () => new HttpClient(ctx.common.host, port, { recorder: ctx.recorder }));
      const woken = clients.map((c, i) => c.request('GET', `/jobs/${id}?wait=${waitS}`).then((res) => {
        const v = res.json<JobView>();
        out.event('woken', { waiter: i + 1, state: v.state, afterDoneMs: Math.round(nowMs() - (v.doneAt ?? 0)) },
          `  waiter ${i + 1} woken: ${v.state}, ${(nowMs() - (v.doneAt ?? nowMs())).toFixed(1)} ms after completion`);
      }));
      // One client sends a long poll and then closes its socket while the server is holding the answer.
      const quitter = net.connect(port, ctx.common.host);
      tapSocket(quitter, ctx.recorder, { side: 'client', annotate: httpAnnotator() });
      await once(quitter, 'connect');
      quitter.write(`GET /jobs/${id}?wait=${waitS} HTTP/1.1\r\nHost: ${ctx.common.host}:${port}\r\n\r\n`);
      const until = Date.now() + 2000;
      while (srv.store.waiterCount(id) < waiters + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      const before = srv.store.waiterCount(id);
      quitter.destroy();
      await once(quitter, 'close');
      await new Promise((r) => setTimeout(r, 50));
      const after = srv.store.waiterCount(id);
      out.event('waiters', { before, after }, `server-side waiters on the job: ${before} while all wait, ${after} after one client hung up (removed at once, no timeout needed)`);

      out.heading(`a watcher long-polling with wait=1 s (held polls that time out are simply re-issued)`);
      await watch(ctx, port, id, 1);
      await Promise.all(woken);
      for (const c of clients) c.destroy();
      out.say(`waiters left on the job: ${srv.store.waiterCount(id)}`);
    } finally {
      await srv.close();
    }
  },
  async server(ctx) {
    const jobMs = parseIntOption('job-ms', ctx.values['job-ms'], { min: 1, max: 3_600_000, default: 10_000 })!;
    const maxWaitS = parseIntOption('max-wait', ctx.values['max-wait'], { min: 0, max: 3600 })!;
    const srv = await startJobsServer({ host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(ctx.values), ...jobLimitsFrom(ctx.values), jobMs, maxWaitS });
    announceListening(ctx.out, 'http', srv.address);
    await ctx.untilSignal();
    await srv.close();
  },
  async client(ctx) {
    if (ctx.common.port === undefined) throw new UsageError('client needs --port');
    const waitS = parseIntOption('wait', ctx.values.wait, { min: 0, max: 3600 })!;
    const id = ctx.positionals[0] ?? (await createJob(ctx, ctx.common.port));
    await watch(ctx, ctx.common.port, id, waitS);
  },
});

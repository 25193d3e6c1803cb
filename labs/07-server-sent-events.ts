// Server-sent events: GET /events answers text/event-stream and never ends; each event is `id:`, `event:`,
// `data:` lines and a blank line, inside HTTP chunks. A client that reconnects sends Last-Event-ID and is
// replayed what it missed from a bounded ring buffer, or told with a `reset` event that it is too far behind.
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { HTTP_LIMIT_OPTIONS, httpLimitsFrom } from '../src/patterns/http-options.ts';
import { startSseServer, type SseApp } from '../src/patterns/sse-app.ts';
import { HttpClient, HttpClientConnection } from '../src/patterns/http-client.ts';
import { SseParser, type ParsedSseEvent } from '../src/wire/sse.ts';
import { DEFAULT_SSE_OPTIONS } from '../src/patterns/sse-server.ts';
import { withChromium, chromiumAvailable, CHROMIUM_PATH } from '../src/patterns/browser.ts';

const spec = {
  name: '07-server-sent-events',
  summary: 'server-sent events over the hand-written HTTP/1.1 core: ids, replay from Last-Event-ID, heartbeats',
  commands: {
    demo: 'server and client on loopback: ticks, a published multi-line event, a reconnect with replay, a reset',
    server: 'serve GET /events (a tick every --every ms) and POST /publish',
    client: 'print the events of a running server (--count N, --last-event-id ID)',
    browser: 'headless Chromium opens 7 EventSources to one origin: the seventh waits (HTTP/1.1 six-connection limit)',
  },
  usage: ['client --port P [--count N] [--last-event-id ID]'],
  dissector: { tcp: 'http' }, // npm run capture and --pcap: decode the server's port as HTTP
  options: {
    ...HTTP_LIMIT_OPTIONS,
    every: { type: 'string', default: '500', description: 'server: ms between tick events', valueName: 'MS' },
    'heartbeat-ms': { type: 'string', default: String(DEFAULT_SSE_OPTIONS.heartbeatMs), description: 'server: a comment line this often on every stream', valueName: 'MS' },
    'retry-ms': { type: 'string', default: String(DEFAULT_SSE_OPTIONS.retryMs), description: 'server: the retry: reconnection delay sent to clients', valueName: 'MS' },
    ring: { type: 'string', default: String(DEFAULT_SSE_OPTIONS.ringSize), description: 'server: events kept for Last-Event-ID replay', valueName: 'N' },
    'max-buffered': { type: 'string', default: String(DEFAULT_SSE_OPTIONS.maxBufferedBytes), description: 'server: unread bytes before a slow client is dropped', valueName: 'BYTES' },
    count: { type: 'string', default: '10', description: 'client: events to print before leaving', valueName: 'N' },
    'last-event-id': { type: 'string', description: 'client: resume after this id', valueName: 'ID' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

async function serve(ctx: Ctx, overrides: { everyMs?: number; heartbeatMs?: number; ringSize?: number } = {}): Promise<SseApp> {
  const v = ctx.values;
  const app = await startSseServer({
    host: ctx.common.host, port: ctx.common.port, recorder: ctx.recorder, limits: httpLimitsFrom(v),
    everyMs: overrides.everyMs ?? parseIntOption('every', v.every, { min: 0, max: 3_600_000 }),
    heartbeatMs: overrides.heartbeatMs ?? parseIntOption('heartbeat-ms', v['heartbeat-ms'], { min: 0, max: 3_600_000 }),
    retryMs: parseIntOption('retry-ms', v['retry-ms'], { min: 0, max: 3_600_000 }),
    ringSize: overrides.ringSize ?? parseIntOption('ring', v.ring, { min: 0, max: 1_000_000 }),
    maxBufferedBytes: parseIntOption('max-buffered', v['max-buffered'], { min: 1024, max: 1 << 30 }),
  });
  announceListening(ctx.out, 'http', app.address);
  return app;
}

interface Stream {
  conn: HttpClientConnection;
  parser: SseParser;
  ended: Promise<unknown>;
}

/** Opens GET /events on its own connection and calls onEvent for each parsed event. */
async function openStream(ctx: Ctx, port: number, onEvent: (e: ParsedSseEvent) => void, lastEventId?: string): Promise<Stream> {
  const conn = await HttpClientConnection.connect(ctx.common.host, port, { recorder: ctx.recorder });
  const parser = new SseParser();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  let headSeen!: () => void;
  const head = new Promise<void>((r) => (headSeen = r));
  const ended = conn.request('GET', '/events', {
    headers,
    onHead: (h) => {
      ctx.out.event('stream', { status: h.status, headers: h.headers },
        `GET /events${lastEventId ? ` (Last-Event-ID: ${lastEventId})` : ''} -> ${h.status} ${h.reason}; ${h.headers.map(([n, v]) => `${n}: ${v}`).filter((x) => !x.startsWith('date')).join(', ')}`);
      headSeen();
    },
    onData: (d) => {
      for (const e of parser.push(d)) onEvent(e);
    },
  }).catch((err: Error) => err);
  await head;
  return { conn, parser, ended };
}

function show(ctx: Ctx, e: ParsedSseEvent, prefix = '  '): void {
  ctx.out.event('event', { id: e.lastEventId, type: e.type, data: e.data },
    `${prefix}id ${e.lastEventId.padEnd(3)} event ${e.type.padEnd(8)} data ${JSON.stringify(e.data)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(10);
}

await runLab(spec, {
  async demo(ctx) {
    const { out } = ctx;
    const ring = 5;
    out.say(`demo settings: a tick every 300 ms, a heartbeat every 700 ms, a ring of ${ring} events (server defaults: ${spec.options.every.default} ms, ${DEFAULT_SSE_OPTIONS.heartbeatMs} ms, ${DEFAULT_SSE_OPTIONS.ringSize})`);
    const app = await serve(ctx, { everyMs: 300, heartbeatMs: 700, ringSize: ring });
    const port = app.address.port;
    try {
      out.heading('one client: ticks, then a published multi-line event');
      const seen: ParsedSseEvent[] = [];
      const s1 = await openStream(ctx, port, (e) => {
        seen.push(e);
        show(ctx, e);
      });
      await until(() => seen.length >= 3, 3000);
      const pub = new HttpClient(ctx.common.host, port, { recorder: ctx.recorder });
      const r = await pub.request('POST', '/publish', { body: 'first line\nsecond line' });
      out.event('published', { status: r.status, ...r.json<object>() }, `POST /publish "first line\\nsecond line" -> ${r.status} ${r.body.toString().trim()}`);
      await until(() => seen.some((e) => e.type === 'message'), 2000);
      await until(() => s1.parser.comments > 0, 1500);
      out.say(`  heartbeat comments received so far: ${s1.parser.comments}; retry: ${s1.parser.retry} ms`);

      out.heading('the client drops the connection, misses some events, reconnects with Last-Event-ID');
      const lastId = seen[seen.length - 1]!.lastEventId;
      s1.conn.destroy();
      await until(() => app.hub.clientCount === 0, 1000);
      out.say(`  disconnected after id ${lastId}; server-side clients now ${app.hub.clientCount} (cleaned up on close)`);
      await sleep(650);
      const resumed: ParsedSseEvent[] = [];
      const s2 = await openStream(ctx, port, (e) => {
        resumed.push(e);
        show(ctx, e);
      }, lastId);
      await until(() => resumed.length >= 5, 3000);
      s2.conn.destroy();
      const ids = [...seen, ...resumed].map((e) => Number(e.lastEventId));
      const gaps = ids.slice(1).filter((id, i) => id !== ids[i]! + 1).length;
      out.event('resume', { ids, gaps }, `  ids across both connections: ${ids.join(' ')} -> ${gaps === 0 ? 'no gap, no duplicate' : `${gaps} discontinuities`}`);

      out.heading(`a client that was away too long: Last-Event-ID older than the ring of ${ring}`);
      const old: ParsedSseEvent[] = [];
      const s3 = await openStream(ctx, port, (e) => {
        old.push(e);
        show(ctx, e);
      }, '1');
      await until(() => old.length >= 2, 2000);
      s3.conn.destroy();
      pub.destroy();
      await until(() => app.hub.clientCount === 0, 1000);
      const st = app.hub.stats;
      out.event('stats', { ...st, clients: app.hub.clientCount },
        `hub: ${st.published} published, ${st.delivered} deliveries, ${st.replayed} replayed, ${st.resets} reset, ${st.heartbeats} heartbeats, ${app.hub.clientCount} clients left`);
      out.say('the browser side (7 EventSources, the seventh waits): npx tsx labs/07-server-sent-events.ts browser');
    } finally {
      await app.close();
    }
  },
  async server(ctx) {
    const app = await serve(ctx);
    await ctx.untilSignal();
    await app.close();
  },
  async client(ctx) {
    if (ctx.common.port === undefined) throw new UsageError('client needs --port');
    const count = parseIntOption('count', ctx.values.count, { min: 1, max: 1_000_000 })!;
    let n = 0;
    let done!: () => void;
    const enough = new Promise<void>((r) => (done = r));
    const s = await openStream(ctx, ctx.common.port, (e) => {
      if (n >= count) return; // a replay can bring many events in one chunk
      show(ctx, e, '');
      if (++n >= count) done();
    }, ctx.values['last-event-id']);
    await Promise.race([enough, s.ended, ctx.untilSignal()]);
    s.conn.destroy();
  },
  async browser(ctx) {
    if (!chromiumAvailable()) throw new UsageError(`no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set WIRELAB_CHROMIUM)`);
    const { out } = ctx;
    const app = await serve(ctx, { everyMs: 200 });
    try {
      await withChromium(async (browser) => {
        const page = await browser.newPage();
        await page.goto(`http://${ctx.common.host}:${app.address.port}/sources?n=7`);
        type S = { index: number; open: boolean; events: number; lastId: string };
        const state = () => page.evaluate(() => (globalThis as unknown as { state: S[] }).state);
        await page.waitForFunction(() => (globalThis as unknown as { state: S[] }).state.filter((s) => s.events > 0).length >= 6);
        await sleep(600);
        for (const s of await state()) out.event('eventsource', s, `  EventSource ${s.index}: ${s.open ? `open, ${s.events} events, last id ${s.lastId}` : 'still CONNECTING: no connection left for this origin'}`);
        out.say(`server-side streams: ${app.hub.clientCount} (Chromium allows 6 HTTP/1.1 connections per origin)`);
        await page.evaluate(() => (globalThis as unknown as { sources: { close(): void }[] }).sources[0]!.close());
        await page.waitForFunction(() => (globalThis as unknown as { state: S[] }).state[6]!.open);
        out.say('closed EventSource 1 -> EventSource 7 opened on the freed connection');
        await sleep(400);
        const s7 = (await state())[6]!;
        out.event('eventsource', s7, `  EventSource 7: open, ${s7.events} events, last id ${s7.lastId}; server-side streams: ${app.hub.clientCount}`);
      });
    } finally {
      await app.close();
    }
  },
});

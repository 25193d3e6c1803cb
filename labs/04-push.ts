// Lab 04: push over the frame protocol. The server sends PUSH frames nobody asked for; a fast and a slow
// client side by side show what a slow consumer costs and the two policies that bound it.
import { runLab, announceListening, parseIntOption, parseChoice, UsageError, type LabContext } from '../src/cli/lab.ts';
import { PushServer, PUSH_DEFAULTS, SLOW_CONSUMER_POLICIES, type PushClientStats, type SlowConsumerPolicy } from '../src/patterns/push-server.ts';
import { FrameClient } from '../src/patterns/frame-client.ts';
import { HEADER_SIZE } from '../src/wire/frame.ts';
import { markdownTable } from '../src/cli/table.ts';

const spec = {
  name: '04-push',
  summary: 'server push over the frame protocol, and what a slow consumer costs',
  commands: {
    demo: 'a fast and a slow client under each slow-consumer policy (the default)',
    server: 'publish an event every --every ms to every client until Ctrl-C',
    client: 'print the events a server pushes: client --port P [--slow MS] [--count N]',
  },
  usage: ['server --port 7004 --every 100 --policy disconnect', 'client --port 7004 --count 10', 'client --port 7004 --slow 500'],
  dissector: { tcp: 'wirelab' }, // npm run capture and --pcap: decode the server's port as wirelab
  options: {
    policy: { type: 'string', default: PUSH_DEFAULTS.policy, description: `slow-consumer policy: ${SLOW_CONSUMER_POLICIES.join(', ')}`, valueName: 'P' },
    'max-queue': { type: 'string', default: String(PUSH_DEFAULTS.maxQueue), description: 'events queued per client beyond its socket buffer', valueName: 'N' },
    'max-connections': { type: 'string', default: String(PUSH_DEFAULTS.maxConnections), description: 'server: clients at once', valueName: 'N' },
    every: { type: 'string', default: '100', description: 'server: ms between events', valueName: 'MS' },
    'event-bytes': { type: 'string', default: '64', description: 'server: size of each event', valueName: 'BYTES' },
    slow: { type: 'string', description: 'client: read one chunk, then wait this long before the next', valueName: 'MS' },
    count: { type: 'string', description: 'client: exit after this many events', valueName: 'N' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

/** `{"seq":N}` padded with spaces to the event size, so the client can spot gaps. */
function eventPayload(seq: number, bytes: number): Buffer {
  const head = `{"seq":${seq},"at":${Date.now()}}`;
  return Buffer.from(head.padEnd(Math.max(bytes, head.length), ' '));
}

function seqOf(payload: Buffer): number {
  return (JSON.parse(payload.toString('utf8')) as { seq: number }).seq;
}

function serverOptions(ctx: Ctx) {
  return {
    policy: parseChoice('policy', ctx.values.policy, SLOW_CONSUMER_POLICIES, PUSH_DEFAULTS.policy),
    maxQueue: parseIntOption('max-queue', ctx.values['max-queue'], { min: 1, max: 1_000_000 })!,
    maxConnections: parseIntOption('max-connections', ctx.values['max-connections'], { min: 1, max: 1_000_000 })!,
  };
}

async function server(ctx: Ctx): Promise<number> {
  const every = parseIntOption('every', ctx.values.every, { min: 1, max: 3_600_000 })!;
  const bytes = parseIntOption('event-bytes', ctx.values['event-bytes'], { min: 1, max: 1024 * 1024 })!;
  const { out } = ctx;
  const srv = new PushServer({
    ...serverOptions(ctx),
    recorder: ctx.recorder,
    onEvent: (e) => out.event(`server-${e.type}`, { ...e, type: undefined }, `${e.type} conn #${e.conn}${'queued' in e ? ` queued=${e.queued}` : ''}${'dropped' in e ? ` dropped=${e.dropped}` : ''}`),
  });
  announceListening(out, 'tcp', await srv.listen(ctx.common.port ?? 0, ctx.common.host));
  let seq = 0;
  const timer = setInterval(() => srv.publish(eventPayload(++seq, bytes)), every);
  const signal = await ctx.untilSignal();
  clearInterval(timer);
  await srv.close();
  out.event('stopped', { signal, published: srv.published }, `stopped (${signal}) after ${srv.published} events`);
  return 0;
}

interface Watcher {
  received: number;
  gaps: number;
  missed: number;
  last: number;
  closed: boolean;
  /** Stop pausing: read at full speed from now on. */
  catchUp(): void;
}

/** Counts events and the holes in their sequence numbers; `slowMs` reads one chunk per period. */
function watch(client: FrameClient, slowMs: number | undefined, onEvent?: (seq: number, payload: Buffer) => void): Watcher {
  let slow = slowMs !== undefined;
  const w: Watcher = { received: 0, gaps: 0, missed: 0, last: 0, closed: false, catchUp: () => {
    slow = false;
    client.socket.resume();
  } };
  client.on('push', (f) => {
    const seq = seqOf(f.payload);
    if (w.last && seq !== w.last + 1) {
      w.gaps++;
      w.missed += seq - w.last - 1;
    }
    w.last = seq;
    w.received++;
    onEvent?.(seq, f.payload);
  });
  client.on('close', () => (w.closed = true));
  if (slowMs !== undefined) {
    // Read one chunk, then stop reading for slowMs: the kernel buffers fill, then the server's queue.
    client.socket.on('data', () => {
      if (!slow) return;
      client.socket.pause();
      setTimeout(() => client.socket.resume(), slowMs).unref();
    });
  }
  return w;
}

async function client(ctx: Ctx): Promise<number> {
  const port = ctx.common.port;
  if (!port) throw new UsageError('client needs --port P (the server prints it)');
  const slow = parseIntOption('slow', ctx.values.slow, { min: 1, max: 3_600_000 });
  const count = parseIntOption('count', ctx.values.count, { min: 1, max: Number.MAX_SAFE_INTEGER });
  const c = await FrameClient.connect({ port, host: ctx.common.host, recorder: ctx.recorder });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const w = watch(c, slow, (seq, payload) => {
    ctx.out.event('push', { seq, bytes: payload.length, payload: payload.toString('utf8').trimEnd() }, payload.toString('utf8').trimEnd());
    if (count !== undefined && w.received >= count) done();
  });
  c.on('close', () => done());
  await Promise.race([finished, ctx.untilSignal()]);
  await c.close();
  ctx.out.event('summary', { received: w.received, gaps: w.gaps, missed: w.missed }, `received ${w.received} events, ${w.gaps} gaps (${w.missed} missed)`);
  return 0;
}

// ---------------------------------------------------------------- the demo

async function round(ctx: Ctx, policy: SlowConsumerPolicy): Promise<void> {
  const { out } = ctx;
  const EVENT_BYTES = 4096;
  const MAX_QUEUE = 128;
  const PUBLISH_MS = 700;
  const srv = new PushServer({ policy, maxQueue: MAX_QUEUE, recorder: ctx.recorder, onEvent: (e) => {
    if (e.type === 'disconnect-slow') out.event('server-disconnect-slow', { conn: e.conn, queued: e.queued }, out.c.magenta('server  ') + `conn #${e.conn}: queue full (${e.queued} events) -> disconnected`);
    if (e.type === 'drop-oldest' && e.dropped === 1) out.event('server-drop-oldest', { conn: e.conn }, out.c.magenta('server  ') + `conn #${e.conn}: queue full -> dropping the oldest event from now on`);
  } });
  const addr = await srv.listen(0, ctx.common.host);
  const fast = await FrameClient.connect({ port: addr.port, host: ctx.common.host, recorder: ctx.recorder });
  const slow = await FrameClient.connect({ port: addr.port, host: ctx.common.host, recorder: ctx.recorder });
  const wf = watch(fast, undefined);
  const ws = watch(slow, 50);
  while (srv.clientCount < 2) await new Promise((r) => setTimeout(r, 1));
  out.say(`publishing ${EVENT_BYTES}-byte events as fast as the event loop allows for ${PUBLISH_MS} ms; max queue ${MAX_QUEUE} events;`);
  out.say('the slow client reads one chunk every 50 ms while events are published, then catches up at full speed.');
  const rssBefore = process.memoryUsage().rss;
  let seq = 0;
  const until = performance.now() + PUBLISH_MS;
  while (performance.now() < until) {
    for (let i = 0; i < 8; i++) srv.publish(eventPayload(++seq, EVENT_BYTES));
    await new Promise((r) => setImmediate(r)); // let sockets drain between bursts
  }
  // Publishing is over: both clients now read at full speed and get everything the server wrote to them.
  ws.catchUp();
  const [fastStats, slowStats] = srv.history as [PushClientStats, PushClientStats];
  const deadline = performance.now() + 2000;
  const behind = () => wf.received < fastStats.written || (!slowStats.disconnected && (ws.received < slowStats.written || slowStats.queued > 0));
  while (behind() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const rssAfter = process.memoryUsage().rss;
  const [sf, ss] = srv.history as [PushClientStats, PushClientStats];
  const bound = PUSH_DEFAULTS.socketHighWaterMark + MAX_QUEUE * (EVENT_BYTES + HEADER_SIZE) + EVENT_BYTES + HEADER_SIZE;
  const rows = [
    { client: 'fast', published: srv.published, written: sf.written, received: wf.received, 'gaps seen': wf.gaps, 'dropped (server)': sf.dropped, 'peak queue': sf.peakQueued, 'peak bytes held': sf.peakBufferedBytes, disconnected: sf.disconnected ? 'yes' : 'no' },
    { client: 'slow', published: srv.published, written: ss.written, received: ws.received, 'gaps seen': ws.gaps, 'dropped (server)': ss.dropped, 'peak queue': ss.peakQueued, 'peak bytes held': ss.peakBufferedBytes, disconnected: ss.disconnected ? 'yes' : 'no' },
  ];
  out.event('round', { policy, rows, boundBytes: bound, rssGrowthBytes: rssAfter - rssBefore }, markdownTable(Object.keys(rows[0]!), rows));
  out.say(`held for the slow client at most ${ss.peakBufferedBytes.toLocaleString('en-US')} bytes; the bound is socket buffer ${PUSH_DEFAULTS.socketHighWaterMark.toLocaleString('en-US')} + ${MAX_QUEUE} x ${EVENT_BYTES + HEADER_SIZE} = ${bound.toLocaleString('en-US')} bytes, whatever the publish rate.`);
  if (policy === 'drop-oldest') out.say(`the slow client saw ${ws.gaps} gap${ws.gaps === 1 ? "" : "s"} in the sequence numbers (${ws.missed} events missed: the server's ${ss.dropped} drops, seen from both sides) and stayed connected.`);
  else out.say(`the slow client was ${ss.disconnected ? 'disconnected when its queue filled; it must reconnect and catch up some other way' : 'not disconnected'}; the fast one never noticed.`);
  await fast.close();
  await slow.close();
  await srv.close();
}

async function demo(ctx: Ctx): Promise<number> {
  ctx.out.heading('1. policy drop-oldest: the slow client stays, loses the oldest events, and the server counts them');
  await round(ctx, 'drop-oldest');
  ctx.out.heading('2. policy disconnect: the slow client is dropped when its queue is full');
  await round(ctx, 'disconnect');
  return 0;
}

await runLab(spec, { demo, server, client });

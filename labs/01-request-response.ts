// Lab 01: request/response over the length-prefixed frame protocol (native-notes/wire-formats.md).
// One request's life byte by byte, pipelining with out-of-order replies, fragmentation and coalescing,
// and a timeout that cancels work on the server.
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { FrameServer, SERVER_DEFAULTS, type ServerEvent } from '../src/patterns/frame-server.ts';
import { FrameClient, RemoteError, CLIENT_DEFAULTS } from '../src/patterns/frame-client.ts';
import { FrameDecoder, FrameType, encodeFrame, parseError, requestPayload, typeName, type Frame } from '../src/wire/frame.ts';
import { tapSocket } from '../src/trace/recorder.ts';
import { frameAnnotator } from '../src/wire/frame.ts';
import { formatTraceEvent } from '../src/trace/printer.ts';
import { errorCode } from '../src/errors.ts';

const spec = {
  name: '01-request-response',
  summary: 'request/response over a length-prefixed TCP framing: ids, pipelining, timeouts, cancellation',
  commands: {
    demo: 'server and clients on loopback, narrated (the default)',
    server: 'run the frame server until Ctrl-C',
    client: 'send one request and print the response: client --port P METHOD [BODY...]',
  },
  usage: ['server [--port P] [--max-payload N] [--verbose]', 'client --port P echo hello', 'client --port P sleep 2000 --timeout 500'],
  dissector: { tcp: 'wirelab' }, // npm run capture and --pcap: decode the server's port as wirelab
  defaultPort: 7070, // the port the dissector registers on (native-notes/wireshark/wirelab.lua)
  options: {
    'max-payload': { type: 'string', description: 'largest frame payload in bytes', default: String(SERVER_DEFAULTS.maxPayload), valueName: 'BYTES' },
    'max-connections': { type: 'string', description: 'server: connections accepted at once', default: String(SERVER_DEFAULTS.maxConnections), valueName: 'N' },
    'idle-timeout': { type: 'string', description: 'server: close a connection idle this long', default: String(SERVER_DEFAULTS.idleTimeoutMs), valueName: 'MS' },
    'max-in-flight': { type: 'string', description: 'server: requests in flight per connection', default: String(SERVER_DEFAULTS.maxInFlight), valueName: 'N' },
    'request-timeout': { type: 'string', description: 'server: abort a request still working after this long', default: String(SERVER_DEFAULTS.requestTimeoutMs), valueName: 'MS' },
    timeout: { type: 'string', description: 'client: per-request timeout', default: String(CLIENT_DEFAULTS.timeoutMs), valueName: 'MS' },
    verbose: { type: 'boolean', default: false, description: 'server: one line per request, not only per connection' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

function serverOptions(ctx: Ctx) {
  const v = ctx.values;
  return {
    maxPayload: parseIntOption('max-payload', v['max-payload'], { min: 0, max: 2 ** 32 - 1 })!,
    maxConnections: parseIntOption('max-connections', v['max-connections'], { min: 1, max: 1_000_000 })!,
    idleTimeoutMs: parseIntOption('idle-timeout', v['idle-timeout'], { min: 1, max: 2 ** 31 - 1 })!,
    maxInFlight: parseIntOption('max-in-flight', v['max-in-flight'], { min: 1, max: 1_000_000 })!,
    requestTimeoutMs: parseIntOption('request-timeout', v['request-timeout'], { min: 1, max: 2 ** 31 - 1 })!,
  };
}

async function server(ctx: Ctx): Promise<number> {
  const { out } = ctx;
  const verbose = ctx.values.verbose;
  const srv = new FrameServer({
    ...serverOptions(ctx),
    recorder: ctx.recorder,
    detailedEvents: verbose,
    onEvent: (e) => {
      if (e.type === 'chunk') return;
      out.event(`server-${e.type}`, { ...e, type: undefined }, describeServerEvent(e));
    },
  });
  const address = await srv.listen(ctx.common.port ?? 0, ctx.common.host);
  announceListening(out, 'tcp', address);
  const signal = await ctx.untilSignal();
  await srv.close();
  out.event('stopped', { signal, ...srv.stats }, `stopped (${signal}): ${srv.stats.connections} connections, ${srv.stats.requests} requests`);
  return 0;
}

function describeServerEvent(e: ServerEvent): string {
  switch (e.type) {
    case 'connection': return `conn #${e.conn} from ${e.remote}`;
    case 'drop': return `dropped a connection from ${e.remote}: over --max-connections`;
    case 'chunk': return `conn #${e.conn} read ${e.bytes} bytes -> ${e.frames} frame(s)`;
    case 'request': return `conn #${e.conn} REQUEST id=${e.id} ${e.method} (${e.bodyBytes} body bytes)`;
    case 'reply': return `conn #${e.conn} ${e.frame} id=${e.id} (${e.bytes} bytes${e.errorCode ? `, code ${e.errorCode}` : ''})`;
    case 'cancel': return `conn #${e.conn} CANCEL id=${e.id}${e.found ? ': work stopped' : ': nothing in flight (already answered)'}`;
    case 'protocol-error': return `conn #${e.conn} protocol error ${e.code}: ${e.message} -> ERROR id=0, close`;
    case 'idle-close': return `conn #${e.conn} idle: closed`;
    case 'close': return `conn #${e.conn} closed`;
  }
}

async function client(ctx: Ctx): Promise<number> {
  const port = ctx.common.port;
  if (port === undefined || port === 0) throw new UsageError('client needs --port P (the server prints it)');
  const [method, ...rest] = ctx.positionals;
  if (!method) throw new UsageError('client needs a METHOD, e.g. `client --port P echo hello`');
  const timeoutMs = parseIntOption('timeout', ctx.values.timeout, { min: 1, max: 2 ** 31 - 1 })!;
  const maxPayload = parseIntOption('max-payload', ctx.values['max-payload'], { min: 0, max: 2 ** 32 - 1 })!;
  const c = await FrameClient.connect({ port, host: ctx.common.host, recorder: ctx.recorder, maxPayload, timeoutMs });
  try {
    const payload = await c.request(method, rest.join(' '), { timeoutMs });
    if (ctx.out.json) ctx.out.event('response', { method, payload: payload.toString('utf8'), bytes: payload.length });
    else process.stdout.write(Buffer.concat([payload, Buffer.from('\n')]));
    return 0;
  } catch (err) {
    if (err instanceof RemoteError) {
      ctx.out.event('error', { code: err.remoteCode, message: err.remoteMessage }, `error ${err.remoteCode}: ${err.remoteMessage}`);
      return 1;
    }
    throw err;
  } finally {
    await c.close();
  }
}

// ---------------------------------------------------------------- the demo

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function demo(ctx: Ctx): Promise<number> {
  const { out } = ctx;
  const c = out.c;
  const C = (s: string) => c.cyan('client  ') + s;
  const S = (s: string) => c.magenta('server  ') + s;
  const started = performance.now();
  const ms = () => `${(performance.now() - started).toFixed(1).padStart(7)} ms`;

  // Part 1 shows the client's bytes even without --trace; with --trace every socket is dumped anyway.
  let showClientBytes = !ctx.common.trace;
  ctx.recorder.onEvent((e) => {
    if (!showClientBytes || e.side !== 'client' || (e.kind !== 'send' && e.kind !== 'recv')) return;
    if (out.json) out.event('wire', { side: e.side, kind: e.kind, bytes: e.data?.length, hex: e.data?.toString('hex'), frames: e.notes });
    else out.raw(c.dim(formatTraceEvent(e, { dim: c.dim })));
  });

  const serverEvents: ServerEvent[] = [];
  let narrateServer = true;
  const srv = new FrameServer({
    recorder: ctx.recorder,
    detailedEvents: true,
    onEvent: (e) => {
      serverEvents.push(e);
      if (narrateServer) out.event(`server-${e.type}`, { ...e, type: undefined }, S(describeServerEvent(e)));
    },
  });
  const address = await srv.listen(0, ctx.common.host);
  announceListening(out, 'tcp', address);

  // 1. One request's life.
  out.heading('1. One request, byte by byte');
  out.say(C(`connecting to ${address.address}:${address.port}`));
  const cl = await FrameClient.connect({ port: address.port, host: ctx.common.host, recorder: ctx.recorder });
  out.say(C(`connected from ${cl.socket.localAddress}:${cl.socket.localPort}; sending REQUEST "echo hello"`));
  const t0 = performance.now();
  const reply = await cl.request('echo', 'hello');
  const rtt = performance.now() - t0;
  out.event('response', { id: 1, payload: reply.toString(), rttMs: rtt }, C(`RESPONSE matched to id 1 by its id field: "${reply}" after ${rtt.toFixed(2)} ms`));
  out.say(c.dim('         The client made three write() calls (header, "echo ", body) under cork(): one writev, so the server read all 22 bytes at once.'));
  out.say(c.dim('         12 bytes of header (version, type, flags, id, length), then the payload; the length tells the decoder where the frame ends.'));
  showClientBytes = false;
  narrateServer = false;

  // 2. Pipelining: many requests in flight on one connection, answered in completion order.
  out.heading('2. Pipelining: four requests in one write, answers out of order');
  const jobs: [string, string][] = [['sleep', '60'], ['sleep', '10'], ['echo', 'now'], ['sleep', '30']];
  const sentAt = performance.now();
  const arrival: string[] = [];
  const results = jobs.map(([m, b], i) =>
    cl.request(m, b).then((payload) => {
      const line = `#${arrival.length + 1} to arrive: request ${i + 1} (${m} ${b}) -> "${payload}" at +${(performance.now() - sentAt).toFixed(1)} ms`;
      arrival.push(`${i + 1}`);
      out.event('pipelined-reply', { request: i + 1, method: m, body: b, payload: payload.toString(), atMs: performance.now() - sentAt }, C(line));
    }),
  );
  out.say(C(`sent ${jobs.map(([m, b], i) => `${i + 1}:${m} ${b}`).join(', ')} without waiting`));
  await Promise.all(results);
  const total = performance.now() - sentAt;
  out.say(C(`all four in ${total.toFixed(1)} ms on one connection (lockstep would take at least 100 ms); arrival order ${arrival.join(', ')}`));

  // 3. Fragmentation and coalescing: TCP is a byte stream, the decoder finds the frames.
  out.heading('3. Fragmentation and coalescing');
  const raw = await rawSocket(address.port, ctx);
  const rawFrames: Frame[] = [];
  const rawDecoder = new FrameDecoder();
  raw.on('data', (chunk: Buffer) => rawDecoder.pushTo(chunk, rawFrames));
  const connOf = () => (serverEvents.filter((e) => e.type === 'connection').at(-1) as { conn: number }).conn;
  await waitUntil(() => serverEvents.some((e) => e.type === 'connection' && e.remote.endsWith(`:${raw.localPort}`)));
  const rawConn = connOf();
  const chunksFor = (from: number) => serverEvents.slice(from).filter((e): e is Extract<ServerEvent, { type: 'chunk' }> => e.type === 'chunk' && e.conn === rawConn);

  const oneFrame = Buffer.concat(encodeFrame(FrameType.REQUEST, 100, requestPayload('echo', 'one byte at a time')));
  let mark = serverEvents.length;
  for (const byte of oneFrame) {
    raw.write(Buffer.from([byte])); // setNoDelay: each write is its own segment
    await sleepMs(1);
  }
  await waitUntil(() => rawFrames.length === 1);
  const frag = chunksFor(mark);
  out.event('fragmentation', { bytes: oneFrame.length, serverReads: frag.length, framesDecoded: frag.reduce((n, e) => n + e.frames, 0) },
    S(`one ${oneFrame.length}-byte frame written 1 byte per write: ${frag.length} reads of ${[...new Set(frag.map((e) => e.bytes))].join('/')} byte(s); the decoder yielded ${frag.reduce((n, e) => n + e.frames, 0)} frame, at the last byte`));

  const three = Buffer.concat([101, 102, 103].map((id) => Buffer.concat(encodeFrame(FrameType.REQUEST, id, requestPayload('echo', `coalesced ${id}`)))));
  mark = serverEvents.length;
  raw.write(three);
  await waitUntil(() => rawFrames.length === 4);
  const coal = chunksFor(mark);
  out.event('coalescing', { bytes: three.length, serverReads: coal.length, framesDecoded: coal.reduce((n, e) => n + e.frames, 0) },
    S(`three frames (${three.length} bytes) in one write: ${coal.length} read(s) of ${coal.map((e) => e.bytes).join('+')} bytes; the decoder yielded ${coal.reduce((n, e) => n + e.frames, 0)} frames`));
  out.say(C(`answers on the raw socket: ${rawFrames.map((f) => `${typeName(f.type)} id=${f.id} "${f.payload}"`).join(', ')}`));

  // 4. A timeout that cancels work on the server.
  out.heading('4. Timeout: the client gives up, sends CANCEL, the server stops the work');
  const seen: Frame[] = [];
  cl.on('frame', (f) => seen.push(f));
  narrateServer = true;
  const tSleep = performance.now();
  try {
    await cl.request('sleep', '800', { timeoutMs: 200 });
  } catch (err) {
    out.event('timeout', { code: errorCode(err), afterMs: performance.now() - tSleep }, C(`sleep 800 with timeoutMs 200: rejected with ${errorCode(err)} after ${(performance.now() - tSleep).toFixed(0)} ms; CANCEL sent`));
  }
  await sleepMs(750);
  narrateServer = false;
  const late = seen.filter((f) => f.type === FrameType.RESPONSE);
  const errors = seen.filter((f) => f.type === FrameType.ERROR).map((f) => parseError(f.payload));
  out.event('after-cancel', { lateResponses: late.length, errorFrames: errors, waitedMs: performance.now() - tSleep },
    C(`waited to +${(performance.now() - tSleep).toFixed(0)} ms: ${late.length} late responses; frames for it: ${errors.map((e) => `ERROR ${e.code} "${e.message}"`).join(', ')} (the server's timer was cleared, nothing else will come)`));

  // 5. The wrong protocol: fail closed.
  out.heading('5. A peer speaking the wrong protocol: ERROR id 0, then close');
  narrateServer = true;
  const bad = await rawSocket(address.port, ctx);
  const badFrames: Frame[] = [];
  const badDecoder = new FrameDecoder();
  bad.on('data', (chunk: Buffer) => badDecoder.pushTo(chunk, badFrames));
  bad.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await once(bad, 'close');
  const e0 = badFrames[0] && parseError(badFrames[0].payload);
  out.say(C(`the HTTP request got ${badFrames.length} frame: ERROR id=${badFrames[0]?.id} code ${e0?.code} "${e0?.message}", then the server closed the connection`));

  // Close.
  out.heading('6. Close');
  await cl.close();
  raw.destroy();
  await waitUntil(() => srv.connectionCount === 0);
  narrateServer = false;
  await srv.close();
  out.event('summary', { ...srv.stats, elapsedMs: performance.now() - started },
    `\ndone in ${ms().trim()}: ${srv.stats.connections} connections, ${srv.stats.requests} requests, ${srv.stats.cancelled} cancelled, ${srv.stats.protocolErrors} protocol error`);
  return 0;
}

function rawSocket(port: number, ctx: Ctx): Promise<Socket> {
  const s = connect({ port, host: ctx.common.host, noDelay: true });
  tapSocket(s, ctx.recorder, { side: 'client', annotate: frameAnnotator() });
  s.on('error', () => {});
  return once(s, 'connect').then(() => s);
}

async function waitUntil(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('the demo waited too long for the server');
    await sleepMs(2);
  }
}

await runLab(spec, { demo, server, client });

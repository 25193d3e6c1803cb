// Lab 02: a stateless UDP query-ID protocol, which is a minimal DNS subset (RFC 1035), so dig, Node's
// dns.Resolver and Wireshark speak it. One query byte by byte, ten in flight answered out of order,
// loss recovered by retry, a forged reply ignored, a large answer truncated over UDP and fetched over TCP.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { runLab, announceListening, urlOf, parseIntOption, parseNumberOption, parseChoice, UsageError, type LabContext } from '../src/cli/lab.ts';
import { DnsServer, type ServerEvent, DEFAULT_MAX_TCP_CONNECTIONS, DEFAULT_TCP_IDLE_MS } from '../src/patterns/dns-server.ts';
import { DnsClient, formatReportLine, reportLine, failedLine, REPORT_HEADER, type ClientEvent, type ReportLine } from '../src/patterns/dns-client.ts';
import { BACKOFF_STRATEGIES, backoffBounds, type BackoffStrategy } from '../src/client/retry.ts';
import { Recorder, type WireEvent } from '../src/trace/recorder.ts';
import { curlRows } from '../src/trace/hexdump.ts';
import { encode, emptyPacket, parseType, TYPE, CLASS_IN, FLAG_QR, FLAG_AA, FLAG_RD } from '../src/wire/dns.ts';
import { loadZoneFile, defaultZone } from '../src/wire/zone.ts';

const USAGE: string[] = ['server [--port P] [--zone FILE] [--loss 0.3] [--delay 10-200] [--spoof]', 'client --port P hello.lab A big.lab TXT'];

const spec = {
  name: '02-udp-query-id',
  summary: 'a stateless UDP query-ID protocol (a minimal DNS subset): ids, loss and retry, spoofing, truncation to TCP',
  commands: {
    demo: 'server and client on loopback, narrated with annotated hex dumps (the default)',
    server: 'run the DNS server (UDP and TCP on one port) until Ctrl-C',
    client: 'resolve names and print dnspeep-style lines: client --port P NAME [TYPE] [NAME [TYPE]...]',
  },
  usage: USAGE,
  dissector: { udp: 'dns', tcp: 'dns' }, // npm run capture and --pcap: the server's port speaks DNS on both
  options: {
    zone: { type: 'string', description: 'server: records from this file (`name TYPE value [ttl]` a line) instead of the built-in lab. zone', valueName: 'FILE' },
    loss: { type: 'string', description: 'server: drop this fraction of UDP queries (0..1)', default: '0', valueName: 'P' },
    delay: { type: 'string', description: 'server: answer UDP after a random delay, MS or MIN-MAX (replies come out of order)', valueName: 'MS[-MS]' },
    spoof: { type: 'boolean', default: false, description: 'server: send a forged reply with a wrong id before each real one' },
    'max-tcp': { type: 'string', description: 'server: TCP connections open at once', default: String(DEFAULT_MAX_TCP_CONNECTIONS), valueName: 'N' },
    'recv-buffer': { type: 'string', description: 'server: SO_RCVBUF of the UDP socket (Linux doubles it, capped by net.core.rmem_max)', valueName: 'BYTES' },
    'tcp-idle': { type: 'string', description: 'server: close an idle TCP connection after this long', default: String(DEFAULT_TCP_IDLE_MS), valueName: 'MS' },
    timeout: { type: 'string', description: 'client: per-attempt timeout', default: '1000', valueName: 'MS' },
    attempts: { type: 'string', description: 'client: attempts per query, the first included', default: '4', valueName: 'N' },
    deadline: { type: 'string', description: 'client: overall deadline per query', default: '5000', valueName: 'MS' },
    backoff: { type: 'string', description: `client: ${BACKOFF_STRATEGIES.join(', ')}`, default: 'full', valueName: 'STRATEGY' },
    edns: { type: 'string', description: 'client: send an EDNS0 OPT record advertising this UDP payload size', valueName: 'BYTES' },
    tcp: { type: 'boolean', default: false, description: 'client: query over TCP' },
    verbose: { type: 'boolean', default: false, description: 'server: a line per query and reply, not only drops and malformed input' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

function parseDelay(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(raw);
  if (!m) throw new UsageError(`--delay must be MS or MIN-MAX, got '${raw}'`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo || hi > 60_000) throw new UsageError(`--delay must have MIN <= MAX <= 60000, got '${raw}'`);
  return [lo, hi];
}

function describeServerEvent(e: ServerEvent): string {
  switch (e.type) {
    case 'query': return `${e.transport} query id=0x${hex4(e.id)} ${e.name}. ${e.qtype} from ${e.from.address}:${e.from.port}`;
    case 'reply': return `${e.transport} reply id=0x${hex4(e.id)} ${e.rcode} answers=${e.answers} ${e.bytes} bytes${e.truncated ? ' TC (truncated)' : ''}`;
    case 'drop': return `udp dropped${e.id === undefined ? '' : ` id=0x${hex4(e.id)}`} from ${e.from.address}:${e.from.port}: ${e.reason}`;
    case 'malformed': return `${e.transport} malformed from ${e.from.address}:${e.from.port}: ${e.code}`;
    case 'spoof': return `udp forged reply id=0x${hex4(e.id)} sent first (--spoof)`;
  }
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

async function server(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  const zone = v.zone ? loadZoneFile(v.zone) : defaultZone();
  const srv = await DnsServer.start({
    host: ctx.common.host,
    port: ctx.common.port ?? 0,
    zone,
    recorder: ctx.recorder,
    loss: parseNumberOption('loss', v.loss, { min: 0, max: 1 }),
    delayMs: parseDelay(v.delay),
    spoof: v.spoof,
    maxTcpConnections: parseIntOption('max-tcp', v['max-tcp'], { min: 1, max: 100_000 }),
    tcpIdleMs: parseIntOption('tcp-idle', v['tcp-idle'], { min: 1, max: 2 ** 31 - 1 }),
    recvBufferSize: parseIntOption('recv-buffer', v['recv-buffer'], { min: 1024, max: 2 ** 31 - 1 }),
    onEvent: (e) => {
      if ((e.type === 'query' || e.type === 'reply') && !v.verbose) return;
      ctx.out.event(`server-${e.type}`, { ...e, type: undefined }, describeServerEvent(e));
    },
  });
  announceListening(ctx.out, 'udp', { address: srv.address.address, port: srv.address.port, family: 'IPv4' });
  ctx.out.say(`also ${urlOf('tcp', { address: srv.address.address, port: srv.address.port, family: '' })} (same port); zone ${zone.origin}. with ${zone.records.size} names`);
  const signal = await ctx.untilSignal();
  await srv.close();
  ctx.out.event('stopped', { signal, ...srv.stats }, `stopped (${signal}): ${srv.stats.received} queries, ${srv.stats.replies} replies, malformed ${JSON.stringify(srv.stats.malformed)}`);
  return 0;
}

function clientRetryOptions(ctx: Ctx) {
  const v = ctx.values;
  return {
    attemptTimeoutMs: parseIntOption('timeout', v.timeout, { min: 1, max: 600_000 })!,
    maxAttempts: parseIntOption('attempts', v.attempts, { min: 1, max: 100 })!,
    deadlineMs: parseIntOption('deadline', v.deadline, { min: 1, max: 3_600_000 })!,
    strategy: parseChoice<BackoffStrategy>('backoff', v.backoff, BACKOFF_STRATEGIES, 'full'),
    ednsUdpSize: parseIntOption('edns', v.edns, { min: 512, max: 65535 }),
    tcp: v.tcp,
  };
}

function printLine(ctx: Ctx, l: ReportLine): void {
  ctx.out.event('query', { ...l }, formatReportLine(l));
}

async function client(ctx: Ctx): Promise<number> {
  if (ctx.common.port === undefined) throw new UsageError('client needs --port');
  if (ctx.positionals.length === 0) throw new UsageError('client needs at least one NAME');
  const queries: { name: string; type: number }[] = [];
  const args = [...ctx.positionals];
  while (args.length) {
    const name = args.shift()!;
    const t = args[0] !== undefined ? parseType(args[0]) : undefined;
    if (t !== undefined) args.shift();
    queries.push({ name, type: t ?? TYPE.A });
  }
  const opts = clientRetryOptions(ctx);
  // Replies are matched against the server's address, so a name like localhost is resolved once here.
  const address = isIP(ctx.common.host) ? ctx.common.host : (await lookup(ctx.common.host)).address;
  const c = await new DnsClient({ server: { address, port: ctx.common.port }, recorder: ctx.recorder }).start();
  ctx.out.raw(REPORT_HEADER + '\n');
  let failures = 0;
  try {
    await Promise.all(queries.map(async (q) => {
      try {
        printLine(ctx, reportLine(await c.query(q.name, { ...opts, type: q.type })));
      } catch (err) {
        failures++;
        printLine(ctx, failedLine(q.name, q.type, opts.maxAttempts, err));
      }
    }));
  } finally {
    c.close();
  }
  return failures ? 1 : 0;
}

// ---- the demo ----

/** Prints the client side's datagrams as annotated hex dumps while `on`; everything under --trace. */
class Narrator {
  on = false;
  maxRows = 8;
  /** Only received datagrams (the forged replies), not the query. */
  recvOnly = false;
  readonly recorder: Recorder;
  constructor(private readonly ctx: Ctx) {
    // The lab's recorder when anything reads it (--trace, --pcap, --diagram), so they all see the demo.
    this.recorder = ctx.recorder.active ? ctx.recorder : new Recorder(false);
    if (!ctx.common.trace) this.recorder.onEvent((e) => this.print(e));
  }
  private print(e: WireEvent): void {
    if (!this.on || e.side !== 'client' || !e.data || (this.recvOnly && e.kind !== 'recv')) return;
    const { c } = this.ctx.out;
    const dir = e.kind === 'send' ? '=> Send' : '<= Recv';
    const rows = curlRows(e.data);
    const shown = rows.length > this.maxRows ? [...rows.slice(0, this.maxRows - 1), `      ... ${rows.length - this.maxRows + 1} more rows`] : rows;
    let text = `${dir} ${e.transport.toUpperCase()} ${e.data.length} bytes  ${e.local.address}:${e.local.port} ${e.kind === 'send' ? '->' : '<-'} ${e.remote.address}:${e.remote.port}\n`;
    text += shown.join('\n') + '\n';
    for (const n of e.notes ?? []) text += c.dim(`   ^ ${n}`) + '\n';
    this.ctx.out.raw(text);
  }
}

async function demo(ctx: Ctx): Promise<number> {
  const { out } = ctx;
  const narrator = new Narrator(ctx);
  const recorder = narrator.recorder;
  let udpExchanges = 0;
  let udpBytes = 0;
  recorder.onEvent((e) => {
    if (e.side === 'client' && e.transport === 'udp' && e.data) {
      udpBytes += e.data.length;
      if (e.kind === 'send') udpExchanges++;
    }
  });
  const servers: DnsServer[] = [];
  const clients: DnsClient[] = [];
  const startServer = async (o: Parameters<typeof DnsServer.start>[0]) => {
    const s = await DnsServer.start({ host: '127.0.0.1', recorder, ...o });
    servers.push(s);
    return s;
  };
  const newClient = async (s: DnsServer, onEvent?: (e: ClientEvent) => void) => {
    const cl = await new DnsClient({ server: s.address, recorder, onEvent }).start();
    clients.push(cl);
    return cl;
  };
  try {
    // 1. One query and its reply.
    out.heading('1. One query, one reply: the id is the only thing that ties them together');
    const main = await startServer({});
    const stateBefore = main.state();
    announceListening(out, 'udp', { address: main.address.address, port: main.address.port, family: 'IPv4' });
    const c1 = await newClient(main);
    narrator.on = true;
    const r1 = await c1.query('hello.lab', { type: TYPE.A, ednsUdpSize: 1232 });
    narrator.on = false;
    out.say(`The reply echoes the id (0x${hex4(r1.id)}) and the question, sets QR and AA, copies RD, and names the answer with a`);
    out.say(`2-byte pointer (c0 0c) to offset 12, where the question's name already is (RFC 1035 4.1.4).`);
    out.raw(REPORT_HEADER + '\n');
    printLine(ctx, reportLine(r1));

    // 2. Ten in flight, answered out of order.
    out.heading('2. Ten queries in flight, answered out of order, matched by id');
    const replyOrder: number[] = [];
    const slow = await startServer({ delayMs: [5, 80], onEvent: (e) => { if (e.type === 'reply') replyOrder.push(e.id); } });
    const c2 = await newClient(slow);
    const sendOrder: number[] = [];
    const names: [string, number][] = [['hello.lab', TYPE.A], ['hello.lab', TYPE.AAAA], ['hello.lab', TYPE.TXT], ['www.lab', TYPE.A], ['nope.lab', TYPE.A],
      ['empty.lab', TYPE.A], ['example.com', TYPE.A], ['www.lab', TYPE.AAAA], ['HeLLo.LaB', TYPE.A], ['empty.lab', TYPE.TXT]];
    const results = await Promise.all(names.map(([n, t]) => c2.query(n, { type: t, onEvent: (e) => { if (e.type === 'send') sendOrder.push(e.id); } })));
    out.say(`sent in this id order:    ${sendOrder.map(hex4).join(' ')}`);
    out.say(`answered in this order:   ${replyOrder.map(hex4).join(' ')}  (--delay 5-80: each reply waits a random time)`);
    const inversions = replyOrder.filter((id, i) => i > 0 && sendOrder.indexOf(id) < sendOrder.indexOf(replyOrder[i - 1]!)).length;
    out.say(`${inversions} replies overtook an earlier query; every one was matched by its id, source and question:`);
    out.raw(REPORT_HEADER + '\n');
    for (const r of results) printLine(ctx, reportLine(r));
    out.say(`ids are random (crypto.randomInt), never sequential: a guesser has 1 in 65,536 per try (RFC 5452).`);

    // 3. Loss recovered by retry.
    out.heading('3. Lost datagrams recovered by retry (equal jitter)');
    const lossy = await startServer({ dropFirst: 2 });
    const c3 = await newClient(lossy);
    const retryOpts = { strategy: 'equal' as const, baseMs: 40, capMs: 400, attemptTimeoutMs: 120, maxAttempts: 5, deadlineMs: 3000 };
    out.say(`The server drops the first 2 queries. Attempt timeout ${retryOpts.attemptTimeoutMs} ms; equal jitter waits temp/2 + random(0, temp/2), temp = min(${retryOpts.capMs}, ${retryOpts.baseMs} * 2^n).`);
    let prev = retryOpts.baseMs;
    const r3 = await c3.query('hello.lab', {
      ...retryOpts,
      onEvent: (e) => {
        if (e.type === 'send') out.event('attempt', { ...e }, `  attempt ${e.attempt}: send id=0x${hex4(e.id)}`);
        else if (e.type === 'failure') out.event('failure', { ...e }, `  attempt ${e.attempt}: ${e.code} at ${e.elapsedMs.toFixed(0)} ms`);
        else if (e.type === 'backoff') {
          const [lo, hi] = backoffBounds({ ...retryOpts }, e.attempt - 1, prev);
          prev = e.delayMs;
          out.event('backoff', { ...e, min: lo, max: hi }, `  backoff ${e.delayMs.toFixed(1)} ms (bounds [${lo}, ${hi}])`);
        } else if (e.type === 'success') out.event('success', { ...e }, `  attempt ${e.attempt}: answered at ${e.elapsedMs.toFixed(0)} ms`);
      },
    });
    out.raw(REPORT_HEADER + '\n');
    printLine(ctx, reportLine(r3));
    out.say(`Each attempt used a fresh id, so a late reply to a timed-out attempt is ignored as an unknown id rather than mistaken.`);

    // 4. Forged replies ignored.
    out.heading('4. Forged replies ignored: a wrong id, a right id from the wrong source');
    const spoofing = await startServer({ spoof: true });
    const attacker = createSocket('udp4');
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
    const ignored: string[] = [];
    const c4 = await newClient(spoofing, (e) => {
      if (e.type === 'ignored') ignored.push(`${e.reason} id=0x${hex4(e.id)} from ${e.from.address}:${e.from.port}`);
    });
    narrator.on = true;
    narrator.recvOnly = true;
    const r4 = await c4.query('hello.lab', {
      onEvent: (e) => {
        if (e.type !== 'send') return;
        // An on-path attacker who saw the id: a right id from the wrong port, and one with the wrong question.
        const forged = (name: string) => encode({ ...emptyPacket(e.id, FLAG_QR | FLAG_AA | FLAG_RD), questions: [{ name, type: TYPE.A, class: CLASS_IN }], answers: [{ name, type: TYPE.A, class: CLASS_IN, ttl: 86400, data: '6.6.6.6' }] });
        attacker.send(forged('hello.lab'), c4.localPort, '127.0.0.1');
      },
    });
    narrator.on = false;
    narrator.recvOnly = false;
    out.say(`Three replies came back. The server's --spoof one (answer 6.6.6.6, a wrong id) and the attacker's (the right id, answer 6.6.6.6,\nbut from port ${attacker.address().port}, not the server's) were ignored; only the real one was accepted:`);
    for (const i of ignored) out.say(`  ignored: ${i}`);
    attacker.close();
    out.raw(REPORT_HEADER + '\n');
    printLine(ctx, reportLine(r4));

    // 5. Truncation and TCP.
    out.heading('5. A large answer: truncated over UDP (TC), fetched again over TCP');
    let tcpState = main.state();
    const watch = await startServer({ onEvent: (e) => { if (e.type === 'query' && e.transport === 'tcp') tcpState = watch.state(); } });
    const c5 = await newClient(watch);
    narrator.on = true;
    narrator.maxRows = 5;
    const r5 = await c5.query('big.lab', { type: TYPE.TXT });
    narrator.on = false;
    out.say(`The UDP reply would have been over 512 bytes (no EDNS0 in this query), so the server sent the header and question with TC=1;`);
    out.say(`the client asked again over TCP, where a 2-byte length prefix frames each message (RFC 1035 4.2.2), like the frame protocol's length field.`);
    out.raw(REPORT_HEADER + '\n');
    printLine(ctx, reportLine(r5));

    // 6. The contrast, from this run's numbers.
    out.heading('6. What UDP did not need');
    const sum = (states: ReturnType<DnsServer['state']>[]) => {
      const total: Record<string, number> = {};
      for (const st of states) for (const [k, n] of Object.entries(st)) total[k] = (total[k] ?? 0) + n;
      return total;
    };
    // The TCP fetch's close reaches its server a moment after the client's: wait for it (bounded).
    for (let i = 0; i < 100 && servers.some((s) => s.state().tcpConnections > 0); i++) await new Promise((r) => setTimeout(r, 5));
    const stateAfter = sum(servers.map((s) => s.state()));
    const udpServed = servers.reduce((n, s) => n + s.stats.udp, 0);
    const handshakes = clients.reduce((n, cl) => n + cl.stats.tcpQueries, 0);
    out.event('contrast', { udpExchanges, udpBytes, udpServed, tcpConnections: handshakes, stateBefore, stateAfter, tcpState }, [
      `${udpExchanges} UDP queries (${udpBytes} bytes both ways, client side) went out with no handshake: the first datagram was the question.`,
      `Server state before (each of the ${servers.length} servers started so): ${JSON.stringify(stateBefore)}`,
      `after answering ${udpServed} UDP datagrams from ${clients.length} client sockets (summed): ${JSON.stringify(stateAfter)}.`,
      `Over UDP nothing was kept per client: no table of peers exists, every reply was built from the datagram alone`,
      `(the reply cache is keyed by the question's bytes, never by who asked, and is bounded).`,
      `The ${handshakes} TCP fetch${handshakes === 1 ? '' : 'es'} needed a 3-way handshake first, and while it was open its server held ${JSON.stringify(tcpState)}:`,
      `a connection entry, a reassembly buffer, an idle timer. The price of UDP's statelessness is paid by the client: ids, matching, timeouts, retries.`,
    ].join('\n'));
    return 0;
  } finally {
    for (const cl of clients) cl.close();
    await Promise.all(servers.map((s) => s.close()));
  }
}

await runLab(spec, { demo, server, client });

// The server side of bench/sse.bench.ts, in its own process so its memory and CPU are its own.
// argv: ours|node. Talks to the parent over IPC: {listening, port} -> {measure} -> {memory} ->
// {publish, everyMs, ms} -> {published, cpu}.
import http from 'node:http';
import { startSseServer } from '../../src/patterns/sse-app.ts';

const kind = process.argv[2] === 'node' ? 'node' : 'ours';
const now = () => performance.timeOrigin + performance.now();
const gc = (globalThis as { gc?: () => void }).gc;

function memory() {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external + m.arrayBuffers };
}

let publish: (data: string) => void;
let clientCount: () => number;
let close: () => Promise<void>;
let port: number;

if (kind === 'ours') {
  const app = await startSseServer({ heartbeatMs: 0, ringSize: 1000, limits: { maxConnections: 5000 } });
  publish = (data) => void app.hub.publish(undefined, data);
  clientCount = () => app.hub.clientCount;
  close = () => app.close();
  port = app.address.port;
} else {
  // The plain way: node:http, writeHead, one res.write per client per event.
  const clients = new Set<http.ServerResponse>();
  let id = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/events') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.write('retry: 2000\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
  });
  server.maxConnections = 5000;
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  publish = (data) => {
    const msg = `id: ${++id}\ndata: ${data}\n\n`;
    for (const res of clients) res.write(msg);
  };
  clientCount = () => clients.size;
  close = () => new Promise<void>((r) => {
    for (const res of clients) res.destroy();
    server.close(() => r());
  });
  port = (server.address() as { port: number }).port;
}

const base = memory();
process.send!({ type: 'listening', port });

process.on('message', async (m: { type: string; everyMs?: number; ms?: number }) => {
  if (m.type === 'measure') {
    process.send!({ type: 'memory', base, now: memory(), clients: clientCount() });
  } else if (m.type === 'publish') {
    const cpu0 = process.cpuUsage();
    let n = 0;
    const start = now();
    const total = Math.floor(m.ms! / m.everyMs!);
    // Against the clock: each tick publishes every event that is due, so a late timer does not lower the
    // offered load and both servers are sent the same number of events.
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((now() - start) / m.everyMs!) + 1);
      while (n < due) {
        publish(now().toFixed(3));
        n++;
      }
      if (n >= total) {
        clearInterval(timer);
        const cpu = process.cpuUsage(cpu0);
        process.send!({ type: 'published', n, cpuMs: (cpu.user + cpu.system) / 1000, memory: memory() });
      }
    }, m.everyMs);
  } else if (m.type === 'stop') {
    await close();
    process.exit(0);
  }
});

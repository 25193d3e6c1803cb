// The SSE lab's server: GET /events (the stream), POST /publish (its body becomes one event to every
// client), a ticker publishing `tick` events, and two small pages for browsers.
import type { AddressInfo } from 'node:net';
import { HttpServer, type HttpServerLimits } from './http-server.ts';
import { SseHub, type SseHubOptions } from './sse-server.ts';
import { eventSourcesPage } from './browser.ts';
import type { Recorder } from '../trace/recorder.ts';

export interface SseAppOptions extends SseHubOptions {
  host?: string;
  port?: number;
  recorder?: Recorder;
  limits?: Partial<HttpServerLimits>;
  /** A `tick` event this often (0: no ticker). */
  everyMs?: number;
}

export interface SseApp {
  http: HttpServer;
  hub: SseHub;
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startSseServer(o: SseAppOptions = {}): Promise<SseApp> {
  const hub = new SseHub(o);
  const http = new HttpServer((req, res) => {
    if (req.path === '/events') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return res.send(405, 'use GET', { allow: 'GET, HEAD' });
      return hub.attach(req, res);
    }
    if (req.path === '/publish') {
      if (req.method !== 'POST') return res.send(405, 'use POST', { allow: 'POST' });
      const text = req.body.toString('utf8');
      const id = hub.publish(req.query.get('event') ?? undefined, text);
      return res.send(200, { id, clients: hub.clientCount });
    }
    if (req.path === '/' || req.path === '/sources') {
      const n = Math.min(Math.max(Number(req.query.get('n') ?? 1) || 1, 1), 20);
      return res.send(200, eventSourcesPage(n), { 'content-type': 'text/html; charset=utf-8' });
    }
    res.send(404, 'not found');
  }, { recorder: o.recorder, limits: o.limits });
  const address = await http.listen(o.port ?? 0, o.host ?? '127.0.0.1');
  let n = 0;
  const ticker = o.everyMs ? setInterval(() => {
    n++;
    hub.publish('tick', JSON.stringify({ n, at: new Date().toISOString() }));
  }, o.everyMs) : null;
  return {
    http, hub, address,
    async close() {
      if (ticker) clearInterval(ticker);
      hub.close();
      await http.close();
    },
  };
}

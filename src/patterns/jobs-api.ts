// The jobs API the polling labs share, over the hand-written HTTP core:
//   POST /jobs                -> 202 {"id"} + Location (RFC 9110 section 15.3.3: accepted, not yet done)
//   GET  /jobs/:id            -> 200 the job as JSON (short polling); 404 for an unknown id
//   GET  /jobs/:id?wait=S     -> held until the job changes state or S seconds pass (long polling)
//   GET  /jobs/:id/events     -> the job's progress as server-sent events, ending after `done`
import type { HttpRequest } from '../wire/http.ts';
import { header } from '../wire/http.ts';
import { encodeEvent, encodeRetry } from '../wire/sse.ts';
import { isCoded } from '../errors.ts';
import type { AddressInfo } from 'node:net';
import { HttpServer, type HttpHandler, type HttpResponse, type HttpServerLimits } from './http-server.ts';
import type { Recorder } from '../trace/recorder.ts';
import { SSE_HEADERS } from './sse-server.ts';
import { JobStore, type JobView } from './jobs.ts';

export interface JobsApiOptions {
  /** Longest a long poll may be held, whatever ?wait= asks (seconds). */
  maxWaitS?: number;
}

export const DEFAULT_MAX_WAIT_S = 60;

function notFound(res: HttpResponse, id: string): void {
  res.send(404, { error: 'no such job', id });
}

/** Returns a handler for /jobs routes; it answers 404 for any other path. */
export function jobsApi(store: JobStore, options: JobsApiOptions = {}): HttpHandler {
  const maxWaitS = options.maxWaitS ?? DEFAULT_MAX_WAIT_S;
  return async (req: HttpRequest, res: HttpResponse) => {
    if (req.path === '/jobs') {
      if (req.method !== 'POST') return res.send(405, { error: 'use POST' }, { allow: 'POST' });
      let view: JobView;
      try {
        view = store.create();
      } catch (err) {
        if (isCoded(err, 'ERR_TOO_MANY_JOBS')) return res.send(503, { error: err.message });
        throw err;
      }
      return res.send(202, { id: view.id }, { location: `/jobs/${view.id}` });
    }
    const m = /^\/jobs\/([0-9a-f]{1,32})(\/events)?$/.exec(req.path);
    if (!m) return res.send(404, { error: 'not found' });
    const id = m[1]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') return res.send(405, { error: 'use GET' }, { allow: 'GET, HEAD' });
    const view = store.get(id);
    if (!view) return notFound(res, id);
    if (m[2]) return jobEvents(store, view, req, res);

    const wait = req.query.get('wait');
    if (wait === null || view.state === 'done') return res.send(200, view, { 'cache-control': 'no-store' });
    const seconds = Number(wait);
    if (wait.trim() === '' || !Number.isFinite(seconds) || seconds < 0) return res.send(400, { error: 'wait must be a number of seconds' });
    // Held open: the job store wakes us on the state change; a client that leaves aborts the wait at once.
    const gone = new AbortController();
    res.onAbort(() => gone.abort());
    let result: JobView | null;
    try {
      result = await store.wait(id, Math.min(seconds, maxWaitS) * 1000, gone.signal);
    } catch (err) {
      if (isCoded(err, 'ERR_TOO_MANY_PENDING')) return res.send(503, { error: err.message });
      throw err;
    }
    if (result === null || res.aborted) return;
    res.send(200, result, { 'cache-control': 'no-store' });
  };
}

/** The job as an event stream: one `progress` event per step (id = step), `done` last, then the stream ends. */
function jobEvents(store: JobStore, view: JobView, req: HttpRequest, res: HttpResponse): void {
  const steps = store.options.steps;
  const last = Number(header(req.headers, 'last-event-id') ?? -1);
  if (view.state === 'done' && last >= steps) {
    // WHATWG HTML 9.2.3: a 204 tells an EventSource to stop reconnecting; the client has seen everything.
    res.status = 204;
    return res.end();
  }
  res.status = 200;
  for (const [n, v] of SSE_HEADERS) res.setHeader(n, v);
  res.startStream();
  if (res.finished) return;
  res.write(encodeRetry(1000));
  const send = (v: JobView): boolean => {
    const step = Math.round(v.progress * steps);
    if (v.state === 'done') {
      res.write(encodeEvent({ id: String(steps), event: 'done', data: JSON.stringify(v) }));
      res.end();
      return true;
    }
    res.write(encodeEvent({ id: String(step), event: 'progress', data: JSON.stringify(v) }));
    return false;
  };
  if (send(view)) return;
  const unsubscribe = store.subscribe(view.id, (v) => {
    if (res.aborted || res.finished) return unsubscribe();
    if (send(v)) unsubscribe();
  });
  res.onAbort(unsubscribe);
}

export interface JobsServerOptions {
  host?: string;
  port?: number;
  recorder?: Recorder;
  limits?: Partial<HttpServerLimits>;
  jobMs?: number;
  maxWaitS?: number;
  maxJobs?: number;
  maxWaitersPerJob?: number;
  /** Extra routes tried before the jobs API (return true when handled). */
  extra?: (req: HttpRequest, res: HttpResponse) => boolean;
}

/** The jobs API on a listening HttpServer (the labs' server side). */
export async function startJobsServer(o: JobsServerOptions = {}): Promise<{ http: HttpServer; store: JobStore; address: AddressInfo; close(): Promise<void> }> {
  const store = new JobStore({ jobMs: o.jobMs, maxJobs: o.maxJobs, maxWaitersPerJob: o.maxWaitersPerJob });
  const api = jobsApi(store, { maxWaitS: o.maxWaitS });
  const http = new HttpServer((req, res) => (o.extra?.(req, res) ? undefined : api(req, res)), { recorder: o.recorder, limits: o.limits });
  const address = await http.listen(o.port ?? 0, o.host ?? '127.0.0.1');
  return {
    http, store, address,
    async close() {
      store.close();
      await http.close();
    },
  };
}

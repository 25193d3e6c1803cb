// Three ways a client learns that a job finished: short polling (ask every interval), long polling (ask,
// and the server holds the answer until the state changes) and server-sent events (one request, the server
// streams each change). Each watcher counts its requests and the bytes its own sockets carried both ways,
// and notes when it learnt of completion, so the comparison is measured, not asserted.
import { HttpClient } from './http-client.ts';
import { nowMs, type JobView } from './jobs.ts';
import { SseParser } from '../wire/sse.ts';
import { sleep } from '../client/retry.ts';
import type { Recorder } from '../trace/recorder.ts';

export interface WatchResult {
  method: 'short polling' | 'long polling' | 'server-sent events';
  requests: number;
  connections: number;
  bytesOut: number;
  bytesIn: number;
  /** When the client had the `done` answer (epoch ms, fractional). */
  knownAt: number;
  final: JobView;
  /** knownAt - the job's doneAt: how late the client learnt of completion. */
  lagMs: number;
}

export interface WatchOptions {
  host: string;
  port: number;
  recorder?: Recorder;
  onUpdate?: (view: JobView, requestNumber: number) => void;
  signal?: AbortSignal;
}

function result(method: WatchResult['method'], client: HttpClient, final: JobView, knownAt: number): WatchResult {
  return {
    method, requests: client.requests, connections: client.connections, bytesOut: client.bytesOut, bytesIn: client.bytesIn,
    knownAt, final, lagMs: knownAt - (final.doneAt ?? knownAt),
  };
}

function expectOk(status: number, what: string): void {
  if (status !== 200) throw new Error(`${what}: HTTP ${status}`);
}

export async function watchShortPolling(id: string, intervalMs: number, o: WatchOptions): Promise<WatchResult> {
  const client = new HttpClient(o.host, o.port, { recorder: o.recorder });
  try {
    for (;;) {
      const res = await client.request('GET', `/jobs/${id}`, { signal: o.signal });
      expectOk(res.status, `GET /jobs/${id}`);
      const view = res.json<JobView>();
      o.onUpdate?.(view, client.requests);
      if (view.state === 'done') return result('short polling', client, view, nowMs());
      await sleep(intervalMs, o.signal);
    }
  } finally {
    client.destroy();
  }
}

export async function watchLongPolling(id: string, waitS: number, o: WatchOptions): Promise<WatchResult> {
  const client = new HttpClient(o.host, o.port, { recorder: o.recorder });
  try {
    for (;;) {
      const res = await client.request('GET', `/jobs/${id}?wait=${waitS}`, { signal: o.signal });
      expectOk(res.status, `GET /jobs/${id}?wait=${waitS}`);
      const view = res.json<JobView>();
      o.onUpdate?.(view, client.requests);
      if (view.state === 'done') return result('long polling', client, view, nowMs());
    }
  } finally {
    client.destroy();
  }
}

export async function watchEvents(id: string, o: WatchOptions): Promise<WatchResult> {
  const client = new HttpClient(o.host, o.port, { recorder: o.recorder });
  const parser = new SseParser();
  let final: JobView | null = null;
  let knownAt = 0;
  try {
    const res = await client.request('GET', `/jobs/${id}/events`, {
      headers: { accept: 'text/event-stream' },
      signal: o.signal,
      onData: (data) => {
        for (const e of parser.push(data)) {
          const view = JSON.parse(e.data) as JobView;
          o.onUpdate?.(view, client.requests);
          if (e.type === 'done' && !final) {
            final = view;
            knownAt = nowMs();
          }
        }
      },
    });
    expectOk(res.status, `GET /jobs/${id}/events`);
    if (!final) throw new Error('event stream ended without a done event');
    return result('server-sent events', client, final, knownAt);
  } finally {
    client.destroy();
  }
}

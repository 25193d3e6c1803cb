import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { once } from 'node:events';
import { JobStore } from '../../src/patterns/jobs.ts';
import { startJobsServer } from '../../src/patterns/jobs-api.ts';
import { HttpClient } from '../../src/patterns/http-client.ts';
import { watchShortPolling, watchLongPolling, watchEvents } from '../../src/patterns/job-watchers.ts';
import { rejects, waitFor } from '../_helpers.ts';

const test = suite('patterns/jobs');

test('a job reports progress, then done with a result', async () => {
  const store = new JobStore({ jobMs: 100, steps: 4 });
  const { id } = store.create();
  assert.is(store.get(id)!.state, 'running');
  const seen: number[] = [];
  store.subscribe(id, (v) => seen.push(v.progress));
  await waitFor(() => store.get(id)!.state === 'done', 2000);
  assert.equal(seen, [0.25, 0.5, 0.75, 1]);
  assert.match(store.get(id)!.result!.digest, /^[0-9a-f]{16}$/);
  store.close();
});

test('many waiters on one job all wake on the state change', async () => {
  const store = new JobStore({ jobMs: 80, steps: 2 });
  const { id } = store.create();
  const waits = Array.from({ length: 50 }, () => store.wait(id, 5000));
  assert.is(store.waiterCount(id), 50);
  const views = await Promise.all(waits);
  assert.ok(views.every((v) => v!.state === 'done'));
  assert.is(store.waiterCount(id), 0);
  store.close();
});

test('a wait times out with the job as it is; an aborted wait is removed at once', async () => {
  const store = new JobStore({ jobMs: 10_000 });
  const { id } = store.create();
  assert.is((await store.wait(id, 20))!.state, 'running');
  const ac = new AbortController();
  const w = store.wait(id, 10_000, ac.signal);
  assert.is(store.waiterCount(id), 1);
  ac.abort();
  assert.is(await w, null);
  assert.is(store.waiterCount(id), 0);
  await rejects(store.wait('nope', 10), 'ERR_JOB_NOT_FOUND');
  store.close();
});

test('maxJobs: past it the oldest finished job is forgotten, or ERR_TOO_MANY_JOBS when all run', () => {
  const store = new JobStore({ jobMs: 10_000, maxJobs: 2 });
  store.create();
  store.create();
  try {
    store.create();
    assert.unreachable('a third job was accepted');
  } catch (err) {
    assert.is((err as { code: string }).code, 'ERR_TOO_MANY_JOBS');
  }
  store.close();
});

test('HTTP: POST /jobs is 202 with Location and an id; GET is the status; unknown id 404; wrong method 405', async () => {
  const srv = await startJobsServer({ jobMs: 100 });
  const c = new HttpClient('127.0.0.1', srv.address.port);
  try {
    const created = await c.request('POST', '/jobs');
    assert.is(created.status, 202);
    const { id } = created.json<{ id: string }>();
    assert.is(created.header('location'), `/jobs/${id}`);
    const status = await c.request('GET', `/jobs/${id}`);
    assert.is(status.status, 200);
    assert.is(status.json<{ state: string }>().state, 'running');
    assert.is((await c.request('GET', '/jobs/0123456789ab')).status, 404);
    assert.is((await c.request('DELETE', `/jobs/${id}`)).status, 405);
    assert.is((await c.request('GET', '/jobs')).status, 405);
  } finally {
    c.destroy();
    await srv.close();
  }
});

test('HTTP long poll: held until done; a client that disconnects while waiting is removed at once', async () => {
  const srv = await startJobsServer({ jobMs: 400 });
  const c = new HttpClient('127.0.0.1', srv.address.port);
  try {
    const { id } = (await c.request('POST', '/jobs')).json<{ id: string }>();
    const held = c.request('GET', `/jobs/${id}?wait=10`);
    const quitter = net.connect(srv.address.port, '127.0.0.1');
    await once(quitter, 'connect');
    quitter.write(`GET /jobs/${id}?wait=10 HTTP/1.1\r\nHost: h\r\n\r\n`);
    await waitFor(() => srv.store.waiterCount(id) === 2, 2000, 'two waiters');
    quitter.destroy();
    await waitFor(() => srv.store.waiterCount(id) === 1, 1000, 'the waiter to be removed');
    const res = await held;
    assert.is(res.json<{ state: string }>().state, 'done');
  } finally {
    c.destroy();
    await srv.close();
  }
});

test('watchers: short polling, long polling and SSE all see done and count their own bytes', async () => {
  const srv = await startJobsServer({ jobMs: 300 });
  try {
    const c = new HttpClient('127.0.0.1', srv.address.port);
    const { id } = (await c.request('POST', '/jobs')).json<{ id: string }>();
    c.destroy();
    const o = { host: '127.0.0.1', port: srv.address.port };
    const [s, l, e] = await Promise.all([watchShortPolling(id, 50, o), watchLongPolling(id, 5, o), watchEvents(id, o)]);
    for (const r of [s, l, e]) {
      assert.is(r.final.state, 'done');
      assert.ok(r.bytesIn > 0 && r.bytesOut > 0);
      assert.ok(r.lagMs >= 0);
    }
    assert.ok(s.requests > l.requests, 'short polling made more requests than long polling');
    assert.is(e.requests, 1);
    assert.is(srv.store.listenerCount(id), 0, 'the SSE subscription is gone after the stream ended');
  } finally {
    await srv.close();
  }
});

test.run();

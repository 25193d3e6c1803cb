// Slowloris: many connections each trickling a request one byte a second, never finishing the head. The
// header timeout (the named limit, short here) closes every one of them with 408, while a normal client is
// still served during the attack.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { HttpServer } from '../../src/patterns/http-server.ts';
import { HttpClientConnection } from '../../src/patterns/http-client.ts';
import { waitFor } from '../_helpers.ts';

const test = suite('patterns/slowloris');

const ATTACKERS = 200;
const HEADER_TIMEOUT_MS = 1500;

test(`${ATTACKERS} connections sending one header byte a second are closed at the header timeout; a normal client is served`, async () => {
  const server = new HttpServer((req, res) => res.send(200, `hello ${req.path}`), { limits: { headerTimeoutMs: HEADER_TIMEOUT_MS } });
  const { port } = await server.listen(0);
  const request = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ' + 'a'.repeat(100) + '\r\n');
  const sockets: net.Socket[] = [];
  const got408: boolean[] = [];
  const closed: boolean[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    for (let i = 0; i < ATTACKERS; i++) {
      const s = net.connect(port, '127.0.0.1');
      sockets.push(s);
      got408.push(false);
      closed.push(false);
      let sent = 0;
      s.on('data', (d) => {
        if (d.toString('latin1').startsWith('HTTP/1.1 408')) got408[i] = true;
      });
      s.on('error', () => {});
      s.on('close', () => (closed[i] = true));
      s.on('connect', () => {
        const drip = () => {
          if (s.destroyed || s.writableEnded || sent >= request.length) return;
          s.write(request.subarray(sent, ++sent));
          timers.push(setTimeout(drip, 1000));
        };
        drip();
      });
    }
    await waitFor(() => server.connectionCount === ATTACKERS, 5000, 'all attackers connected');

    // During the attack a normal client gets its answer.
    const c = await HttpClientConnection.connect('127.0.0.1', port);
    const res = await c.request('GET', '/normal');
    assert.is(res.status, 200);
    assert.is(res.body.toString(), 'hello /normal\n');
    c.destroy();

    await waitFor(() => closed.every(Boolean), HEADER_TIMEOUT_MS + 3000, 'every attacker closed');
    assert.is(got408.filter(Boolean).length, ATTACKERS, 'each attacker got a 408');
    assert.is(server.stats.rejected.ERR_HTTP_HEADER_TIMEOUT, ATTACKERS);
    await waitFor(() => server.connectionCount === 0, 2000, 'server-side connections released');
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test.run();

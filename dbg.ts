import net from 'node:net';
import { once } from 'node:events';
import { HttpServer } from '/work/wt/issue6-http/src/patterns/http-server.ts';
import { HttpClientConnection } from '/work/wt/issue6-http/src/patterns/http-client.ts';
const server = new HttpServer((req, res) => res.send(200, req.path), { limits: { maxConnections: 2 } });
const { port } = await server.listen(0);
async function exchange(bytes: string) {
  const s = net.connect(port, '127.0.0.1'); const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d)); s.on('error', (e) => console.log('err', e.message)); s.write(bytes);
  await once(s, 'close'); return Buffer.concat(parts).toString('latin1');
}
console.log(JSON.stringify(await exchange('GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n')));
const a = await HttpClientConnection.connect('127.0.0.1', port);
const b = await HttpClientConnection.connect('127.0.0.1', port);
console.log(JSON.stringify(await exchange('GET / HTTP/1.1\r\nHost: h\r\n\r\n')));
console.log((await a.request('GET', '/ok')).status);
a.destroy(); b.destroy(); await server.close();

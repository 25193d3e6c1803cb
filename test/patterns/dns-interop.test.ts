// Real outside tools against the lab's server and client: dig (BIND 9), Node's dns.Resolver (c-ares,
// not our code) and tshark's DNS dissector. needTool() skips loudly locally, fails under CI=true.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsServer } from '../../src/patterns/dns-server.ts';
import { DnsClient } from '../../src/patterns/dns-client.ts';
import { TYPE } from '../../src/wire/dns.ts';
import { needTool, rejects } from '../_helpers.ts';

const test = suite('patterns/dns-interop');

let server: DnsServer;
test.before(async () => {
  server = await DnsServer.start();
});
test.after(async () => {
  await server.close();
});

function run(cmd: string, args: string[], timeoutMs = 8000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve(stdout);
    });
  });
}

const dig = (...args: string[]) => run('dig', [`@127.0.0.1`, '-p', String(server.address.port), '+time=2', '+tries=1', ...args]);

test('dig @127.0.0.1 -p PORT hello.lab A +short prints 127.0.0.1', async () => {
  if (!needTool('dig', 'apt-get install dnsutils')) return;
  assert.is(await dig('hello.lab', 'A', '+short'), '127.0.0.1\n');
});

test('dig +tcp works on the same port', async () => {
  if (!needTool('dig')) return;
  const before = server.stats.tcp;
  assert.is(await dig('+tcp', 'hello.lab', 'TXT', '+short'), '"hello from the wirelab DNS subset"\n');
  assert.is(server.stats.tcp, before + 1);
});

test('dig of the large TXT: TC over UDP with +ignore; without it dig retries over TCP and gets all of it', async () => {
  if (!needTool('dig')) return;
  const ignored = await dig('big.lab', 'TXT', '+ignore');
  assert.match(ignored, /;; flags: qr aa tc rd; QUERY: 1, ANSWER: 0,/);
  const full = await dig('big.lab', 'TXT');
  assert.match(full, /;; Truncated, retrying in TCP mode\./);
  assert.match(full, /;; flags: qr aa rd; QUERY: 1, ANSWER: 1,/);
  assert.match(full, /\(TCP\)/);
  assert.is(full.match(/wirelab large answer, string \d\d of 24/g)?.length, 24);
});

test('dig sees NXDOMAIN, REFUSED and the answer to a mixed-case name', async () => {
  if (!needTool('dig')) return;
  assert.match(await dig('nope.lab'), /status: NXDOMAIN/);
  assert.match(await dig('example.com'), /status: REFUSED/);
  assert.match(await dig('HeLLo.LAB', '+noedns'), /HeLLo\.LAB\.\s+300\s+IN\s+A\s+127\.0\.0\.1/);
});

test("Node's dns.Resolver (c-ares) resolves A, AAAA and TXT, and gets ENOTFOUND for NXDOMAIN", async () => {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${server.address.port}`]);
  assert.equal(await r.resolve4('hello.lab'), ['127.0.0.1']);
  assert.equal(await r.resolve6('hello.lab'), ['::1']);
  assert.equal(await r.resolveTxt('hello.lab'), [['hello from the wirelab DNS subset']]);
  assert.equal(await r.resolve4('www.lab'), ['127.0.0.1']);
  await rejects(r.resolve4('nope.lab'), 'ENOTFOUND');
  // c-ares follows TC to TCP by itself, too.
  assert.is((await r.resolveTxt('big.lab'))[0]!.length, 24);
});

test('tshark decodes a capture of the lab traffic as DNS with the right id', async () => {
  if (!needTool('tshark', 'apt-get install tshark')) return;
  if (process.getuid?.() !== 0) {
    process.stderr.write('\n!!! SKIPPED: capturing on lo needs root (CI runs as root)\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'wirelab-dns-'));
  const pcap = join(dir, 'dns.pcap');
  const port = server.address.port;
  // Bounded: stops after 4 packets (two UDP exchanges) or 8 s, whichever comes first.
  const shark = spawn('tshark', ['-i', 'lo', '-f', `udp port ${port}`, '-c', '4', '-a', 'duration:8', '-w', pcap], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => shark.on('close', r));
  try {
    await new Promise<void>((resolve, reject) => {
      let err = '';
      let timer: NodeJS.Timeout | undefined;
      shark.stderr.on('data', (c: Buffer) => {
        err += c;
        // 'Capturing on' comes before the filter is live; 'Capture started.' (dumpcap's log) after.
        if (err.includes('Capture started')) resolve();
        else if (err.includes('Capturing on') && !timer) timer = setTimeout(resolve, 1000);
      });
      shark.on('close', () => reject(new Error(`tshark ended before capturing: ${err}`)));
    });
    const c = await new DnsClient({ server: server.address }).start();
    const a = await c.query('hello.lab');
    const t = await c.query('hello.lab', { type: TYPE.TXT });
    c.close();
    assert.is(await exited, 0);
    const fields = await run('tshark', ['-r', pcap, '-Y', 'dns', '-d', `udp.port==${port},dns`, '-T', 'fields', '-E', 'separator=|',
      '-e', 'dns.id', '-e', 'dns.flags.response', '-e', 'dns.flags.authoritative', '-e', 'dns.qry.name', '-e', 'dns.a', '-e', 'dns.resp.name']);
    const rows = fields.trim().split('\n').map((l) => l.split('|'));
    const hex = (id: number) => `0x${id.toString(16).padStart(4, '0')}`;
    assert.equal(rows.map((r) => [r[0], r[1], r[3]]), [
      [hex(a.id), '0', 'hello.lab'], [hex(a.id), '1', 'hello.lab'], [hex(t.id), '0', 'hello.lab'], [hex(t.id), '1', 'hello.lab'],
    ]);
    assert.is(rows[1]![2], '1');
    assert.is(rows[1]![4], '127.0.0.1');
  } finally {
    if (shark.exitCode === null) shark.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

// A seeded fuzz of the DNS decoder: 100,000 random and mutated datagrams. Any non-coded exception
// fails the run (and prints the seed and the bytes), unlike a fuzzer that only logs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decode, encode, emptyPacket, annotateMessage, TYPE, CLASS_IN, FLAG_QR, FLAG_AA, FLAG_TC, type DnsPacket } from '../../src/wire/dns.ts';
import { isCoded } from '../../src/errors.ts';
import { seededRandom } from '../_helpers.ts';
import { DIG_QUERY, DIG_REPLY } from '../fixtures/dns-golden.ts';

const test = suite('wire/dns fuzz');
const SEED = 20261122;
const RUNS = 100_000;

function corpus(): Buffer[] {
  const rich: DnsPacket = {
    ...emptyPacket(0x4242, FLAG_QR | FLAG_AA),
    questions: [{ name: 'www.lab', type: TYPE.A, class: CLASS_IN }],
    answers: [
      { name: 'www.lab', type: TYPE.CNAME, class: CLASS_IN, ttl: 300, data: 'hello.lab' },
      { name: 'hello.lab', type: TYPE.A, class: CLASS_IN, ttl: 300, data: '127.0.0.1' },
      { name: 'hello.lab', type: TYPE.AAAA, class: CLASS_IN, ttl: 300, data: '::1' },
      { name: 'hello.lab', type: TYPE.TXT, class: CLASS_IN, ttl: 300, data: [Buffer.from('one'), Buffer.from('two')] },
    ],
    authorities: [{ name: 'lab', type: TYPE.NS, class: CLASS_IN, ttl: 300, data: 'ns.lab' }],
    edns: { udpPayloadSize: 1232, extendedRcode: 0, version: 0, flags: 0, options: [{ code: 10, data: Buffer.alloc(8, 1) }] },
  };
  const tc = { ...emptyPacket(1, FLAG_QR | FLAG_AA | FLAG_TC), questions: [{ name: 'big.lab', type: TYPE.TXT, class: CLASS_IN }] };
  return [DIG_QUERY, DIG_REPLY, encode(rich), encode(tc)];
}

function mutate(seed: Buffer, random: () => number): Buffer {
  const int = (n: number) => Math.floor(random() * n);
  let b = Buffer.from(seed);
  const steps = 1 + int(4);
  for (let s = 0; s < steps; s++) {
    switch (int(7)) {
      case 0: if (b.length) b[int(b.length)] = int(256); break;
      case 1: if (b.length) b[int(b.length)] = [0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff][int(6)]!; break;
      case 2: b = b.subarray(0, int(b.length + 1)); break;
      case 3: b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(20) }, () => int(256)))]); break;
      case 4: if (b.length >= 12) b.writeUInt16BE(int(0x10000), 4 + 2 * int(4)); break;
      case 5: if (b.length > 13) { const at = 12 + int(b.length - 13); b[at] = 0xc0 | int(0x40); b[at + 1] = int(256); } break;
      case 6: { const at = int(b.length + 1); b = Buffer.concat([b.subarray(0, at), b.subarray(int(b.length + 1))]); break; }
    }
  }
  return b;
}

test(`${RUNS} random and mutated datagrams: only coded errors, and what decodes re-encodes to the same packet`, () => {
  const random = seededRandom(SEED);
  const seeds = corpus();
  let decoded = 0;
  const codes = new Map<string, number>();
  for (let i = 0; i < RUNS; i++) {
    let bytes: Buffer;
    if (i % 4 === 0) {
      bytes = Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)));
    } else {
      bytes = mutate(seeds[i % seeds.length]!, random);
    }
    let packet: DnsPacket | undefined;
    try {
      packet = decode(bytes);
    } catch (err) {
      if (!isCoded(err)) throw new Error(`seed ${SEED} run ${i}: uncoded ${String(err)} for ${bytes.toString('hex')}`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
    if (packet) {
      decoded++;
      let again: DnsPacket | undefined;
      try {
        again = decode(encode(packet));
      } catch (err) {
        assert.unreachable(`seed ${SEED} run ${i}: re-encoding a decoded packet failed with ${String(err)} for ${bytes.toString('hex')}`);
      }
      assert.equal(again, packet, `seed ${SEED} run ${i}`);
    }
    if (i % 10 === 0) annotateMessage(bytes); // never throws
  }
  // The mutations must reach deep: most of the decoder's error kinds show up.
  for (const code of ['ERR_DNS_TRUNCATED', 'ERR_DNS_POINTER_FORWARD', 'ERR_DNS_POINTER_LOOP', 'ERR_DNS_LABEL_TOO_LONG', 'ERR_DNS_TRAILING_BYTES', 'ERR_DNS_BAD_RDATA', 'ERR_DNS_BAD_OPT']) {
    assert.ok((codes.get(code) ?? 0) > 0, `the fuzz never produced ${code}: ${JSON.stringify([...codes])}`);
  }
  assert.ok(decoded > 1000, `only ${decoded} inputs decoded: the mutations are too blunt`);
});

test.run();

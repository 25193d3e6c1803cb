import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, HEADER_SIZE, decodeFrame, encodeFrame, encodingLength,
  errorPayload, parseError, parseRequest, requestPayload, describeFrame, type Frame, type FrameTypeValue,
} from '../../src/wire/frame.ts';
import { seededRandom, throwsCode } from '../_helpers.ts';

/** Hex with spaces and `#` comments, one field a line. */
function hex(annotated: string): Buffer {
  return Buffer.from(annotated.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

interface Fixture {
  name: string;
  bytes: Buffer;
  type: FrameTypeValue;
  id: number;
  payload: Buffer;
}

const FIXTURES: Fixture[] = [
  {
    name: 'REQUEST echo hello',
    bytes: hex(`
      01                                # version 1
      01                                # type 1 = REQUEST
      00 00                             # flags 0 (reserved)
      00 00 00 07                       # id 7
      00 00 00 0a                       # length 10
      65 63 68 6f 20 68 65 6c 6c 6f     # "echo hello": method "echo", SP, body "hello"
    `),
    type: FrameType.REQUEST, id: 7, payload: Buffer.from('echo hello'),
  },
  {
    name: 'RESPONSE hello',
    bytes: hex(`
      01 02 00 00                       # version 1, type 2 = RESPONSE, flags 0
      00 00 00 07                       # id 7: the request's id
      00 00 00 05                       # length 5
      68 65 6c 6c 6f                    # "hello"
    `),
    type: FrameType.RESPONSE, id: 7, payload: Buffer.from('hello'),
  },
  {
    name: 'ERROR 100 boom',
    bytes: hex(`
      01 03 00 00                       # version 1, type 3 = ERROR, flags 0
      00 00 01 00                       # id 256
      00 00 00 06                       # length 6
      00 64                             # error code 100 (application)
      62 6f 6f 6d                       # message "boom" (UTF-8)
    `),
    type: FrameType.ERROR, id: 256, payload: hex('0064 626f6f6d'),
  },
  {
    name: 'PUSH tick',
    bytes: hex(`
      01 04 00 00                       # version 1, type 4 = PUSH, flags 0
      00 00 00 00                       # id 0: the connection itself
      00 00 00 04                       # length 4
      74 69 63 6b                       # "tick"
    `),
    type: FrameType.PUSH, id: 0, payload: Buffer.from('tick'),
  },
  {
    name: 'PING empty',
    bytes: hex(`01 05 00 00  ff ff ff ff  00 00 00 00   # PING, id 2^32-1, no payload`),
    type: FrameType.PING, id: 0xffffffff, payload: Buffer.alloc(0),
  },
  {
    name: 'PONG with payload',
    bytes: hex(`01 06 00 00  00 00 00 2a  00 00 00 02  68 69   # PONG id 42 "hi"`),
    type: FrameType.PONG, id: 42, payload: Buffer.from('hi'),
  },
  {
    name: 'CANCEL',
    bytes: hex(`01 07 00 00  00 00 00 09  00 00 00 00   # CANCEL id 9, empty payload`),
    type: FrameType.CANCEL, id: 9, payload: Buffer.alloc(0),
  },
];

function same(f: Frame, x: Fixture): void {
  assert.is(f.type, x.type, `${x.name}: type`);
  assert.is(f.id, x.id, `${x.name}: id`);
  assert.is(f.flags, 0, `${x.name}: flags`);
  assert.ok(f.payload.equals(x.payload), `${x.name}: payload`);
}

const test = suite('wire/frame');

test('golden frames decode fed whole', () => {
  for (const x of FIXTURES) {
    const frames = new FrameDecoder().push(x.bytes);
    assert.is(frames.length, 1, x.name);
    same(frames[0]!, x);
  }
});

test('golden frames decode fed one byte at a time', () => {
  for (const x of FIXTURES) {
    const d = new FrameDecoder();
    const frames: Frame[] = [];
    for (let i = 0; i < x.bytes.length; i++) {
      frames.push(...d.push(x.bytes.subarray(i, i + 1)));
      if (i < x.bytes.length - 1) assert.is(frames.length, 0, `${x.name}: frame emitted early at byte ${i}`);
    }
    assert.is(frames.length, 1, x.name);
    same(frames[0]!, x);
    assert.is(d.bufferedBytes, 0);
    d.end();
  }
});

test('all golden frames coalesced in one chunk decode in order', () => {
  const all = Buffer.concat(FIXTURES.map((x) => x.bytes));
  const frames = new FrameDecoder().push(all);
  assert.is(frames.length, FIXTURES.length);
  frames.forEach((f, i) => same(f, FIXTURES[i]!));
});

test('encode gives the golden bytes, header and payload as separate buffers', () => {
  for (const x of FIXTURES) {
    const parts = encodeFrame(x.type, x.id, x.payload);
    assert.is(parts[0]!.length, HEADER_SIZE);
    if (x.payload.length > 0) assert.is(parts[1], x.payload, `${x.name}: payload was copied`);
    assert.equal(Buffer.concat(parts).toString('hex'), x.bytes.toString('hex'), x.name);
    assert.is(encodingLength(x.payload), x.bytes.length);
  }
});

test('round trip at offset 10 of a bigger buffer', () => {
  for (const x of FIXTURES) {
    const big = Buffer.concat([Buffer.alloc(10, 0xee), ...encodeFrame(x.type, x.id, x.payload), Buffer.alloc(5, 0xee)]);
    same(decodeFrame(big, 10), x);
  }
});

test('a frame that spans chunks is copied once; one inside a chunk is a view', () => {
  const bytes = FIXTURES[0]!.bytes;
  const whole = new FrameDecoder().push(bytes)[0]!;
  assert.is(whole.payload.buffer, bytes.buffer, 'not a view of the chunk');
  const d = new FrameDecoder();
  d.push(bytes.subarray(0, 15));
  const split = d.push(bytes.subarray(15))[0]!;
  assert.ok(split.payload.equals(FIXTURES[0]!.payload));
});

test('each(): the allocation-free path gives the same frames as bounds into the chunk', () => {
  const all = Buffer.concat(FIXTURES.map((x) => x.bytes));
  for (const step of [all.length, 1, 5]) {
    const d = new FrameDecoder();
    const got: { type: number; id: number; payload: Buffer; inChunk: boolean }[] = [];
    for (let off = 0; off < all.length; off += step) {
      const chunk = all.subarray(off, off + step);
      d.each(chunk, (type, _flags, id, buf, start, end) => got.push({ type, id, payload: Buffer.from(buf.subarray(start, end)), inChunk: buf === chunk }));
    }
    assert.is(got.length, FIXTURES.length, `step ${step}`);
    got.forEach((g, i) => {
      assert.is(g.type, FIXTURES[i]!.type);
      assert.is(g.id, FIXTURES[i]!.id);
      assert.ok(g.payload.equals(FIXTURES[i]!.payload));
    });
    if (step === all.length) assert.ok(got.every((g) => g.inChunk || g.payload.length === 0), 'whole chunk: bounds into the chunk itself');
  }
});

test('request and error payloads', () => {
  assert.equal(parseRequest(Buffer.from('echo hello world')), { method: 'echo', body: Buffer.from('hello world') });
  assert.equal(parseRequest(Buffer.from('ping')), { method: 'ping', body: Buffer.alloc(0) });
  assert.equal(Buffer.concat(requestPayload('echo', 'hi')).toString(), 'echo hi');
  assert.equal(Buffer.concat(requestPayload('echo')).toString(), 'echo');
  throwsCode(() => parseRequest(Buffer.from(' x')), 'ERR_BAD_REQUEST');
  throwsCode(() => parseRequest(Buffer.from([0x01, 0x20])), 'ERR_BAD_REQUEST');
  throwsCode(() => requestPayload('two words'), 'ERR_BAD_REQUEST');
  assert.equal(parseError(errorPayload(7, 'dup ✓')), { code: 7, message: 'dup ✓' });
  throwsCode(() => parseError(Buffer.from([1])), 'ERR_BAD_REQUEST');
});

test('describeFrame names the fields', () => {
  const f = new FrameDecoder().push(FIXTURES[0]!.bytes)[0]!;
  assert.is(describeFrame(f), 'version=1 type=REQUEST id=7 length=10 method=echo body="hello"');
});

// ---- hostile inputs: every way a header can lie, each with its code ----

const HOSTILE: { name: string; bytes: Buffer; code: string; maxPayload?: number }[] = [
  { name: 'version 0', bytes: hex('00'), code: 'ERR_BAD_VERSION' },
  { name: 'version 2', bytes: hex('02 01 0000 00000001 00000000'), code: 'ERR_BAD_VERSION' },
  { name: 'version 255 (e.g. an HTTP request: "G")', bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n'), code: 'ERR_BAD_VERSION' },
  { name: 'type 0', bytes: hex('01 00'), code: 'ERR_UNKNOWN_TYPE' },
  { name: 'type 8', bytes: hex('01 08 0000 00000001 00000000'), code: 'ERR_UNKNOWN_TYPE' },
  { name: 'type 255', bytes: hex('01 ff'), code: 'ERR_UNKNOWN_TYPE' },
  { name: 'length maxPayload + 1', bytes: hex('01 01 0000 00000001 00100001'), code: 'ERR_FRAME_TOO_LARGE' },
  { name: 'length 2^32-1', bytes: hex('01 01 0000 00000001 ffffffff'), code: 'ERR_FRAME_TOO_LARGE' },
  { name: 'length 65 with maxPayload 64', bytes: hex('01 04 0000 00000000 00000041'), code: 'ERR_FRAME_TOO_LARGE', maxPayload: 64 },
];

test('hostile headers fail with their code, fed whole and byte by byte, buffering nothing', () => {
  for (const h of HOSTILE) {
    const whole = new FrameDecoder({ maxPayload: h.maxPayload ?? DEFAULT_MAX_PAYLOAD });
    throwsCode(() => whole.push(h.bytes), h.code);
    assert.is(whole.bufferedBytes, 0, `${h.name}: bytes kept after failure`);
    const bytewise = new FrameDecoder({ maxPayload: h.maxPayload ?? DEFAULT_MAX_PAYLOAD });
    let code: string | undefined;
    for (let i = 0; i < h.bytes.length && !code; i++) {
      try {
        bytewise.push(h.bytes.subarray(i, i + 1));
      } catch (err) {
        code = (err as { code?: string }).code;
      }
    }
    assert.is(code, h.code, `${h.name}: byte by byte`);
    throwsCode(() => decodeFrame(Buffer.concat([h.bytes, Buffer.alloc(16)]), 0, h.maxPayload), h.code);
  }
});

test('a decoder that failed stays failed: no resync', () => {
  const d = new FrameDecoder();
  throwsCode(() => d.push(hex('09')), 'ERR_BAD_VERSION');
  throwsCode(() => d.push(FIXTURES[0]!.bytes), 'ERR_DECODER_FAILED');
  assert.ok(d.failed);
});

test('frames before a bad one in the same chunk are not lost to the caller', () => {
  const d = new FrameDecoder();
  const out: Frame[] = [];
  throwsCode(() => d.pushTo(Buffer.concat([FIXTURES[0]!.bytes, hex('07')]), out), 'ERR_BAD_VERSION');
  assert.is(out.length, 1);
});

test('a header truncated at every offset yields nothing and end() reports ERR_FRAME_TRUNCATED', () => {
  const bytes = FIXTURES[0]!.bytes;
  for (let cut = 1; cut < bytes.length; cut++) {
    const d = new FrameDecoder();
    assert.equal(d.push(bytes.subarray(0, cut)), [], `cut at ${cut}`);
    throwsCode(() => d.end(), 'ERR_FRAME_TRUNCATED');
    throwsCode(() => decodeFrame(bytes.subarray(0, cut)), 'ERR_FRAME_TRUNCATED');
  }
  new FrameDecoder().end(); // an empty stream is a clean end
});

test('encodeHeader refuses ids and lengths that are not u32', () => {
  throwsCode(() => encodeFrame(FrameType.REQUEST, -1), 'ERR_BAD_REQUEST');
  throwsCode(() => encodeFrame(FrameType.REQUEST, 2 ** 32), 'ERR_BAD_REQUEST');
});

// ---- seeded fuzz: 100,000 random and mutated inputs in random chunk sizes ----

test('fuzz: 100,000 random and mutated streams end as whole frames or a coded error', () => {
  const SEED = 20261122;
  const random = seededRandom(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const maxPayload = 64;
  const CODES = new Set(['ERR_BAD_VERSION', 'ERR_UNKNOWN_TYPE', 'ERR_FRAME_TOO_LARGE', 'ERR_FRAME_TRUNCATED']);
  let wholeOk = 0;
  let coded = 0;
  for (let iter = 0; iter < 100_000; iter++) {
    // Build 1-4 valid frames, then maybe mutate bytes or truncate, or use pure noise.
    const sent: { type: number; id: number; payload: Buffer }[] = [];
    let input: Buffer;
    const mode = int(10);
    if (mode === 0) {
      input = Buffer.alloc(int(80));
      for (let i = 0; i < input.length; i++) input[i] = int(256);
    } else {
      const parts: Buffer[] = [];
      const n = 1 + int(4);
      for (let k = 0; k < n; k++) {
        const payload = Buffer.alloc(int(maxPayload + 1));
        for (let i = 0; i < payload.length; i++) payload[i] = int(256);
        const type = 1 + int(7);
        const id = int(2 ** 32);
        sent.push({ type, id, payload });
        parts.push(...encodeFrame(type as FrameTypeValue, id, payload));
      }
      input = Buffer.concat(parts);
      if (mode >= 6) {
        const flips = 1 + int(3);
        for (let f = 0; f < flips; f++) input[int(input.length)] = int(256);
      } else if (mode === 5) input = input.subarray(0, int(input.length));
    }
    const d = new FrameDecoder({ maxPayload });
    const got: Frame[] = [];
    let error: unknown;
    try {
      for (let off = 0; off < input.length; ) {
        const size = 1 + int(random() < 0.5 ? 4 : 40);
        d.pushTo(input.subarray(off, off + size), got);
        off += size;
        assert.ok(d.bufferedBytes <= HEADER_SIZE + maxPayload, `seed ${SEED} iter ${iter}: buffered ${d.bufferedBytes}`);
      }
      d.end();
    } catch (err) {
      error = err;
    }
    for (const f of got) assert.ok(f.payload.length <= maxPayload, `seed ${SEED} iter ${iter}: payload over the limit`);
    if (error !== undefined) {
      const code = (error as { code?: string }).code;
      assert.ok(code !== undefined && CODES.has(code), `seed ${SEED} iter ${iter}: uncoded error ${String(error)}`);
      coded++;
    } else {
      wholeOk++;
      if (mode >= 1 && mode <= 4) {
        // Unmutated input: exactly the frames sent, in order.
        assert.is(got.length, sent.length, `seed ${SEED} iter ${iter}`);
        got.forEach((f, i) => {
          assert.is(f.type, sent[i]!.type);
          assert.is(f.id, sent[i]!.id);
          assert.ok(f.payload.equals(sent[i]!.payload));
        });
      }
    }
  }
  assert.ok(wholeOk > 30_000 && coded > 10_000, `the fuzz exercised both outcomes (${wholeOk} whole, ${coded} coded)`);
});

test.run();

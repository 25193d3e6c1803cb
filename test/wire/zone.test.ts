import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseZone, loadZoneFile, defaultZone, inZone } from '../../src/wire/zone.ts';
import { encode, emptyPacket, TYPE, CLASS_IN } from '../../src/wire/dns.ts';
import { throwsCode } from '../_helpers.ts';

const test = suite('wire/zone');

test('parses name TYPE value [ttl], quoted TXT strings, comments and $ORIGIN', () => {
  const z = parseZone([
    '; the lab zone',
    '$ORIGIN test.',
    'a.test.   A     10.0.0.1',
    'a.test    AAAA  2001:db8::1   60',
    'a.test    TXT   "two words" "and \\"quotes\\"" 120   # a comment',
    'alias.test CNAME a.test',
    '',
  ].join('\n'), 'lab.zone');
  assert.is(z.origin, 'test');
  const a = z.records.get('a.test')!;
  assert.equal(a.map((r) => [r.type, r.ttl]), [[TYPE.A, 300], [TYPE.AAAA, 60], [TYPE.TXT, 120]]);
  assert.equal((a[2]!.data as Buffer[]).map((b) => b.toString()), ['two words', 'and "quotes"']);
  assert.is(z.records.get('alias.test')![0]!.data, 'a.test');
});

test('without $ORIGIN the origin is the labels every name shares', () => {
  assert.is(parseZone('x.lab A 1.2.3.4\ny.lab A 1.2.3.5\n').origin, 'lab');
  assert.is(parseZone('only.lab A 1.2.3.4\n').origin, 'lab');
  assert.ok(inZone(defaultZone(), 'HELLO.lab.'));
  assert.ok(!inZone(defaultZone(), 'xlab'));
});

const bad: [string, string, RegExp][] = [
  ['too few fields', 'a.lab A', /z:1: expected 'name TYPE value \[ttl\]'/],
  ['unsupported type', 'ok.lab A 1.2.3.4\na.lab MX 10 mail.lab', /z:2: unsupported type 'MX'/],
  ['bad IPv4', 'a.lab A 300.1.1.1', /z:1: '300.1.1.1' is not an IPv4 address/],
  ['bad IPv6', 'a.lab AAAA 1::2::3', /z:1: '1::2::3' is not an IPv6 address/],
  ['label over 63 bytes', `${'x'.repeat(64)}.lab A 1.2.3.4`, /z:1: bad name/],
  ['TXT string over 255 bytes', `a.lab TXT "${'x'.repeat(256)}"`, /z:1: TXT string of 256 bytes/],
  ['unterminated quote', 'a.lab TXT "oops', /z:1: unterminated quoted string/],
  ['CNAME and other data', 'a.lab CNAME b.lab\n\na.lab A 1.2.3.4', /z:3: 'a.lab' has a CNAME/],
  ['outside $ORIGIN', '$ORIGIN lab\nb.example A 1.2.3.4', /z:2: 'b.example' is outside the origin/],
  ['ttl too large', 'a.lab A 1.2.3.4 4294967295', /z:1: ttl/],
];
for (const [what, text, message] of bad) {
  test(`a bad line names file and line: ${what}`, () => {
    const err = throwsCode(() => parseZone(text, 'z'), 'ERR_DNS_ZONE_SYNTAX');
    assert.match(err.message, message);
  });
}

test('loadZoneFile reads a file and names it in errors; a missing file is a coded error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wirelab-zone-'));
  try {
    const file = join(dir, 'bad.zone');
    writeFileSync(file, 'good.lab A 1.2.3.4\nbad.lab A nope\n');
    const err = throwsCode(() => loadZoneFile(file), 'ERR_DNS_ZONE_SYNTAX');
    assert.ok(err.message.startsWith(`${file}:2: `), err.message);
    throwsCode(() => loadZoneFile(join(dir, 'missing.zone')), 'ERR_DNS_ZONE_SYNTAX');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the default zone has a TXT answer over 1232 bytes, so it truncates over UDP even with EDNS0', () => {
  const big = defaultZone().records.get('big.lab')!;
  const reply = { ...emptyPacket(0, 0), questions: [{ name: 'big.lab', type: TYPE.TXT, class: CLASS_IN }], answers: big };
  assert.ok(encode(reply).length > 1232);
});

test.run();

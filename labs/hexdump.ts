// hexdump: dump a file or stdin in the layout of curl --trace, hexdump -C or xxd, byte for byte as those
// tools print it (test/trace/hexdump.test.ts diffs the output against the real tools).
import { readFileSync, fstatSync } from 'node:fs';
import { runLab, parseChoice, UsageError, type LabContext } from '../src/cli/lab.ts';
import { DUMP_FORMATS, dump, curlBlock } from '../src/trace/hexdump.ts';
import { encodeFrame, FrameType, requestPayload } from '../src/wire/frame.ts';

const spec = {
  name: 'hexdump',
  summary: 'hex dumps in curl --trace, hexdump -C and xxd layouts',
  commands: { dump: 'dump FILE, or stdin when it is a pipe or file; with neither, a demo' },
  usage: ['FILE --format xxd', '- < FILE   (stdin)', '--format hexdump FILE'],
  options: {
    format: { type: 'string', default: 'curl', description: `layout: ${DUMP_FORMATS.join(', ')}`, valueName: 'FMT' },
  },
} as const;

function stdinIsData(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile();
  } catch {
    return false;
  }
}

async function run(ctx: LabContext<typeof spec.options>): Promise<number> {
  const format = parseChoice('format', ctx.values.format, DUMP_FORMATS, 'curl');
  const [file, extra] = ctx.positionals;
  if (extra !== undefined) throw new UsageError(`one FILE at most, got '${extra}' too`);
  if (file !== undefined || stdinIsData()) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file === undefined || file === '-' ? 0 : file);
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (ctx.out.json) ctx.out.event('dump', { format, bytes: bytes.length, text: dump(format, bytes) });
    else process.stdout.write(dump(format, bytes));
    return 0;
  }
  // The demo: one request frame of the frame protocol in all three layouts.
  const frame = Buffer.concat(encodeFrame(FrameType.REQUEST, 7, requestPayload('echo', 'hello, wire')));
  const { out } = ctx;
  out.say(`The same ${frame.length} bytes (a REQUEST frame: id 7, "echo hello, wire") in three layouts.`);
  out.say('Pipe a file in (`npx tsx labs/hexdump.ts FILE --format xxd`) to dump your own bytes.');
  out.heading('curl --trace');
  out.raw(curlBlock('send', frame));
  out.heading('hexdump -C');
  out.raw(dump('hexdump', frame));
  out.heading('xxd');
  out.raw(dump('xxd', frame));
  out.event('demo', { bytes: frame.length, hex: frame.toString('hex') }, '\nRead it: 01 version, 01 type REQUEST, 00 00 flags, 00 00 00 07 id, 00 00 00 10 length 16, then "echo hello, wire".');
  return 0;
}

await runLab(spec, { dump: run });

// Hex dumps laid out byte for byte as the real tools print them, so a lab's output can be diffed
// against `curl --trace`, `hexdump -C` and `xxd` for the same bytes (test/trace/hexdump.test.ts does).

export type DumpFormat = 'curl' | 'hexdump' | 'xxd';
export const DUMP_FORMATS: readonly DumpFormat[] = ['curl', 'hexdump', 'xxd'];

const ROW = 16;

function printable(byte: number): string {
  return byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : '.';
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/**
 * curl's trace rows (src/tool_cb_dbg.c `dump`): `%04zx: `, 16 x `%02x ` with three spaces per missing byte,
 * then the ASCII column directly. `offset` continues the numbering of an earlier chunk.
 */
export function curlRows(bytes: Uint8Array, offset = 0): string[] {
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += ROW) {
    let hex = '';
    let ascii = '';
    for (let c = 0; c < ROW; c++) {
      const b = bytes[i + c];
      if (b === undefined) hex += '   ';
      else {
        hex += hex2(b) + ' ';
        ascii += printable(b);
      }
    }
    rows.push((offset + i).toString(16).padStart(4, '0') + ': ' + hex + ascii);
  }
  return rows;
}

/** The block curl --trace prints for one send or receive: a header line, then the rows. */
export function curlBlock(direction: 'send' | 'recv', bytes: Uint8Array): string {
  const head = `${direction === 'send' ? '=> Send' : '<= Recv'} data, ${bytes.length} bytes (0x${bytes.length.toString(16)})`;
  return [head, ...curlRows(bytes)].join('\n') + '\n';
}

/** `hexdump -C`: canonical hex+ASCII, identical rows squeezed to `*`, final line the length. */
export function hexdumpC(bytes: Uint8Array): string {
  let out = '';
  let previous: string | undefined;
  let squeezing = false;
  for (let i = 0; i < bytes.length; i += ROW) {
    const row = bytes.subarray(i, i + ROW);
    const key = row.length === ROW ? Buffer.from(row).toString('latin1') : undefined;
    if (key !== undefined && key === previous) {
      if (!squeezing) out += '*\n';
      squeezing = true;
      continue;
    }
    squeezing = false;
    previous = key;
    let hex = '';
    for (let c = 0; c < ROW; c++) {
      const b = row[c];
      hex += b === undefined ? '   ' : hex2(b) + ' ';
      if (c === 7) hex += ' ';
    }
    let ascii = '';
    for (const b of row) ascii += printable(b);
    out += i.toString(16).padStart(8, '0') + '  ' + hex + ' |' + ascii + '|\n';
  }
  if (bytes.length > 0) out += bytes.length.toString(16).padStart(8, '0') + '\n';
  return out;
}

/** `xxd` default layout: `%08x: `, eight 2-byte groups, two spaces, ASCII. */
export function xxd(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += ROW) {
    let hex = '';
    let ascii = '';
    for (let c = 0; c < ROW; c++) {
      const b = bytes[i + c];
      hex += b === undefined ? '  ' : hex2(b);
      if (c % 2 === 1 && c !== ROW - 1) hex += ' ';
      if (b !== undefined) ascii += printable(b);
    }
    out += i.toString(16).padStart(8, '0') + ': ' + hex + '  ' + ascii + '\n';
  }
  return out;
}

export function dump(format: DumpFormat, bytes: Uint8Array): string {
  switch (format) {
    case 'curl':
      return curlRows(bytes).map((r) => r + '\n').join('');
    case 'hexdump':
      return hexdumpC(bytes);
    case 'xxd':
      return xxd(bytes);
  }
}

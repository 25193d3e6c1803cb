// Real loopback traffic of the frame protocol for the pcap, diagram and dissector tests: a tiny echo
// server and a client written here (not the lab's), each socket tapped as the labs tap theirs.
import { createServer, connect, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, FrameType, frameAnnotator, requestPayload, type FrameTypeValue } from '../../src/wire/frame.ts';
import { tapSocket, type Recorder } from '../../src/trace/recorder.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function frameBytes(type: FrameTypeValue, id: number, payload: Buffer | Buffer[]): Buffer {
  return Buffer.concat(encodeFrame(type, id, payload));
}
export function request(id: number, method: string, body = ''): Buffer {
  return frameBytes(FrameType.REQUEST, id, requestPayload(method, body));
}

export interface Conversation {
  port: number;
  /** [id, method] of each REQUEST the client wrote, in order. */
  sent: [number, string][];
}

export interface ConversationOptions {
  host?: string;
  /** Tap the client's socket (default true). */
  tapClient?: boolean;
  /** Tap the server's socket (default true). */
  tapServer?: boolean;
  /** Run before the client connects (e.g. start tcpdump on the port). */
  beforeConnect?: (port: number) => Promise<void>;
}

/**
 * One connection: a whole request, one written a byte at a time (setNoDelay), three coalesced in one
 * write; the server answers each REQUEST with a RESPONSE carrying the body. Both sides closed at the end.
 */
export async function conversation(recorder: Recorder | undefined, options: ConversationOptions = {}): Promise<Conversation> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((s) => {
    if (options.tapServer ?? true) tapSocket(s, recorder, { side: 'server', annotate: frameAnnotator() });
    const decoder = new FrameDecoder();
    s.on('data', (chunk) => {
      for (const f of decoder.push(chunk)) {
        const sp = f.payload.indexOf(0x20);
        s.write(frameBytes(FrameType.RESPONSE, f.id, sp === -1 ? Buffer.alloc(0) : f.payload.subarray(sp + 1)));
      }
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as { port: number }).port;
  await options.beforeConnect?.(port);
  const client: Socket = connect({ port, host, noDelay: true });
  if (options.tapClient ?? true) tapSocket(client, recorder, { side: 'client', annotate: frameAnnotator() });
  await new Promise((r) => client.once('connect', r));
  const decoder = new FrameDecoder();
  let responses = 0;
  client.on('data', (c) => (responses += decoder.push(c).length));
  const sent: [number, string][] = [];
  const waitResponses = async (n: number) => {
    for (let i = 0; i < 400 && responses < n; i++) await sleep(5);
  };
  client.write(request(1, 'echo', 'hello'));
  sent.push([1, 'echo']);
  await waitResponses(1);
  for (const byte of request(2, 'echo', 'one byte at a time')) {
    client.write(Buffer.from([byte]));
    await sleep(1);
  }
  sent.push([2, 'echo']);
  await waitResponses(2);
  client.write(Buffer.concat([request(3, 'echo', 'a'), request(4, 'sleep', '1'), request(5, 'fail', 'x')]));
  sent.push([3, 'echo'], [4, 'sleep'], [5, 'fail']);
  await waitResponses(5);
  await new Promise<void>((r) => {
    client.once('close', () => r());
    client.end();
  });
  await new Promise<void>((r) => server.close(() => r()));
  await sleep(5);
  return { port, sent };
}

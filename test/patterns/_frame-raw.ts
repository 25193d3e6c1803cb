// A raw frame-protocol peer for tests: writes any bytes, collects the frames it gets back.
import { connect, type Socket } from 'node:net';
import { FrameDecoder, type Frame } from '../../src/wire/frame.ts';

export interface RawPeer {
  socket: Socket;
  frames: Frame[];
  closed: Promise<void>;
  isClosed(): boolean;
}

export function rawPeer(port: number): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    const decoder = new FrameDecoder({ maxPayload: 2 ** 32 - 1 });
    const frames: Frame[] = [];
    let closed = false;
    const closedP = new Promise<void>((r) => socket.once('close', () => { closed = true; r(); }));
    socket.on('data', (c: Buffer) => decoder.pushTo(Buffer.from(c), frames));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, frames, closed: closedP, isClosed: () => closed }));
    socket.once('error', reject);
  });
}

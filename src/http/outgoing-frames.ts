/**
 * How the WebSocket transport's frames reach each TCP socket. One live event
 * fans out to thousands of subscriptions, many on each socket, all in one
 * synchronous loop (the hub's): a system call and ws's per-frame work
 * (a header Buffer, the text encoded, two writable entries and a callback)
 * for each frame were the service's largest costs, by profile.
 *
 * - A shared result's `next` frame (writeNext) is held and written together
 *   with the socket's other held frames, as one Buffer in one write, with its
 *   JSON encoded once for every socket (the same string for all).
 * - Every other frame goes through ws's send into the corked TCP socket.
 * - Held frames and the cork are let go at the end of the turn (after the
 *   microtasks queued by then); a socket's held frames also go as soon as
 *   they pass WRITE_AT_BYTES, so a client with a very large share starts
 *   reading before the rest of it is made. Writing every socket's every
 *   1,000 or 2,500 frames instead (so that all clients read during the loop)
 *   cost more CPU than it saved on 2 shared cores (bench/README.md).
 *
 * Order holds: any other send, and ws's close, first writes what is held;
 * TCP keeps the order of writes. Writing beside ws's Sender is safe because it
 * never queues frames itself without compression (the server has none) or Blobs (never sent).
 */
import { WebSocket } from 'ws';

/** A socket's held bytes that are written at once: large enough that a write's own cost is small beside it. */
const WRITE_AT_BYTES = 64 * 1024;

type Tcp = {
  cork(): void;
  uncork(): void;
  write(data: Buffer, written: (error?: Error | null) => void): boolean;
};
type Written = (error?: Error) => void;
type Held = { starts: string[]; payloads: Buffer[]; written: Written[]; bytes: number };

/** For the benchmark: called once for each write of held frames, with how many it carried. */
export const heldFrameWrites: { observe: ((frames: number) => void) | undefined } = { observe: undefined };

/** One transport's sockets with something held or corked in this turn. */
export class OutgoingFrames {
  private readonly pending = new Set<SocketFrames>();
  private scheduled = false;
  // A shared result's JSON, encoded once with its frame's closing brace, for the last result sent.
  private lastJson: string | undefined;
  private lastPayload: Buffer | undefined;
  private readonly releaseAll = () => {
    this.scheduled = false;
    for (const frames of this.pending) frames.release();
    this.pending.clear();
  };

  /** Routes every frame of `socket` through here. */
  attach(socket: WebSocket): SocketFrames {
    return new SocketFrames(socket, this);
  }

  /** @internal */
  payloadOf(json: string): Buffer {
    if (json !== this.lastJson) {
      this.lastJson = json;
      this.lastPayload = Buffer.from(`${json}}`);
    }
    return this.lastPayload!;
  }

  /** @internal `frames` has something to let go of by the end of the turn. */
  note(frames: SocketFrames): void {
    this.pending.add(frames);
    if (this.scheduled) return;
    this.scheduled = true;
    // After the microtasks queued now: a fan-out's frames are all made by then.
    process.nextTick(this.releaseAll);
  }
}

export class SocketFrames {
  private readonly tcp: Tcp | undefined;
  private corked = false;
  private held: Held | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly transport: OutgoingFrames,
  ) {
    // ws has no public cork or raw write; its underlying TCP socket does.
    this.tcp = (socket as unknown as { _socket?: Tcp })._socket;
    const close = socket.close;
    socket.close = (...args: Parameters<WebSocket['close']>) => {
      this.release();
      close.apply(socket, args);
    };
  }

  /**
   * Holds `{start}{json}}` as a text frame; `written` is called once it is
   * written to the TCP socket, with an error if that failed; at once when the
   * socket is no longer open (as graphql-ws's own send: nothing is sent then).
   */
  writeNext(start: string, json: string, written: Written): void {
    if (this.socket.readyState !== WebSocket.OPEN || !this.tcp) return written();
    const held = this.held;
    const payload = this.transport.payloadOf(json);
    if (held) {
      held.starts.push(start);
      held.payloads.push(payload);
      held.written.push(written);
      held.bytes += start.length + payload.length;
      if (held.bytes >= WRITE_AT_BYTES) this.release();
      return;
    }
    this.held = { starts: [start], payloads: [payload], written: [written], bytes: start.length + payload.length };
    this.transport.note(this);
  }

  /** Before ws sends any other frame: what is held goes first, and the frame goes into the corked socket. */
  beforeSend(): void {
    this.writeHeld();
    if (this.corked || !this.tcp) return;
    this.corked = true;
    this.tcp.cork();
    this.transport.note(this);
  }

  /** Writes what is held and lets the cork go. */
  release(): void {
    this.writeHeld();
    if (!this.corked) return;
    this.corked = false;
    this.tcp!.uncork();
  }

  private writeHeld(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    if (this.socket.readyState !== WebSocket.OPEN) {
      for (const written of held.written) written();
      return;
    }
    const { starts, payloads } = held;
    const startBytes = starts.map((start) => Buffer.byteLength(start));
    let size = 0;
    for (let i = 0; i < starts.length; i++) {
      const length = startBytes[i]! + payloads[i]!.length;
      size += headerSize(length) + length;
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < starts.length; i++) {
      at = writeTextHeader(out, at, startBytes[i]! + payloads[i]!.length);
      at += out.write(starts[i]!, at);
      at += payloads[i]!.copy(out, at);
    }
    heldFrameWrites.observe?.(starts.length);
    this.tcp!.write(out, (error) => {
      for (const written of held.written) written(error ?? undefined);
    });
  }
}

// RFC 6455 5.2: a server's frames are unmasked; the length takes 7 bits, or 16 after 126, or 64 after 127.
const headerSize = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);

function writeTextHeader(out: Buffer, at: number, length: number): number {
  out[at] = 0x81; // FIN, text
  if (length < 126) {
    out[at + 1] = length;
    return at + 2;
  }
  if (length < 65_536) {
    out[at + 1] = 126;
    out.writeUInt16BE(length, at + 2);
    return at + 4;
  }
  out[at + 1] = 127;
  out.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
  out.writeUInt32BE(length >>> 0, at + 6);
  return at + 10;
}

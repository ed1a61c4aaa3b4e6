/**
 * The driver's idle and fan-out subscribers: the graphql-transport-ws
 * protocol spoken directly on `ws`, so that reading 10,000 frames of one
 * change costs the driver little next to the service it measures (graphql-ws's
 * client, a MessageEvent, its emitter and validation and a full JSON.parse came
 * to 7–11 µs a frame: above the fan-out target by themselves).
 *
 * A live event's frame is read only as far as the check needs: the
 * subscription's id, that it is a `next` of a contentRequestProgress EVENT,
 * and its sequence (the first "sequence" key after that, the top-level one:
 * the query selects it before `event`, and a JSON string cannot hold `"`
 * unescaped). Any other frame (a snapshot, an error, `complete`) is parsed
 * whole. Every subscription checks its sequences go up by one: a duplicate,
 * a gap or a reordering is counted, never passed over.
 */
import WebSocket from 'ws';
import { now } from '../lib/clock.js';
import { openedSignal } from '../lib/opened.js';

export type IdleEvent = (subscription: IdleSubscription, sequence: number, at: number) => void;

export type IdleSubscription = {
  opened: Promise<void>;
  ended: boolean;
  /** The last EVENT's sequence (0 before the first). */
  lastSequence: number;
  dispose(): void;
};

type Entry = IdleSubscription & { onEvent: IdleEvent; markOpened(): void; end(why: string): void; disposed: boolean };

const EVENT_AFTER_ID = '","type":"next","payload":{"data":{"contentRequestProgress":{"kind":"EVENT",';
const SEQUENCE_KEY = '"sequence":"';

export class IdleSocket {
  private readonly subscriptions = new Map<string, Entry>();
  private nextId = 1;

  private constructor(
    private readonly socket: WebSocket,
    private readonly onProblem: (why: string) => void,
  ) {
    socket.on('message', (data: Buffer, isBinary: boolean) => this.receive(isBinary ? '' : data.toString(), now()));
    socket.on('close', (code) => {
      for (const entry of this.subscriptions.values()) entry.end(`socket closed (${code})`);
    });
  }

  /** Connects and waits for `connection_ack`; `onProblem` hears of every subscription the server ended or failed. */
  static open(serverUrl: string, token: string, onProblem: (why: string) => void): Promise<IdleSocket> {
    const socket = new WebSocket(`${serverUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', (code) => reject(new Error(`socket closed before it was acknowledged: ${code}`)));
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      socket.once('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { type: string };
        if (message.type !== 'connection_ack') return reject(new Error(`expected connection_ack, got ${data.toString()}`));
        socket.removeListener('error', reject);
        socket.removeAllListeners('close');
        socket.on('error', () => undefined); // the close that follows ends its subscriptions
        resolve(new IdleSocket(socket, onProblem));
      });
    });
  }

  /** One subscription; `opened` resolves with its first `next` (the snapshot). */
  subscribe(query: string, variables: Record<string, unknown>, onEvent: IdleEvent): IdleSubscription {
    const id = String(this.nextId++);
    const { opened, markOpened, fail } = openedSignal();
    const entry: Entry = {
      opened,
      ended: false,
      lastSequence: 0,
      disposed: false,
      onEvent,
      markOpened,
      end: (why) => {
        if (entry.ended) return;
        entry.ended = true;
        this.subscriptions.delete(id);
        if (!entry.disposed) this.onProblem(why);
        fail(new Error(why));
      },
      dispose: () => {
        if (entry.ended) return;
        entry.disposed = true;
        if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ id, type: 'complete' }));
        entry.end('disposed');
      },
    };
    this.subscriptions.set(id, entry);
    this.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    return entry;
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close(1000);
    });
  }

  private receive(text: string, at: number): void {
    // The live event's shape: `{"id":"<id>","type":"next","payload":{"data":{"contentRequestProgress":{"kind":"EVENT",…`.
    if (text.startsWith('{"id":"')) {
      const idEnd = text.indexOf('"', 7);
      if (idEnd > 7 && text.startsWith(EVENT_AFTER_ID, idEnd)) {
        const keyAt = text.indexOf(SEQUENCE_KEY, idEnd + EVENT_AFTER_ID.length);
        const valueAt = keyAt + SEQUENCE_KEY.length;
        const valueEnd = keyAt < 0 ? -1 : text.indexOf('"', valueAt);
        const sequence = valueEnd > valueAt ? Number(text.slice(valueAt, valueEnd)) : NaN;
        const entry = this.subscriptions.get(text.slice(7, idEnd));
        if (entry && Number.isInteger(sequence)) return this.event(entry, sequence, at);
      }
    }
    this.receiveParsed(text, at);
  }

  private receiveParsed(text: string, at: number): void {
    let message: { id?: string; type?: string; payload?: any };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return this.onProblem(`unreadable frame: ${text.slice(0, 200)}`);
    }
    if (message.type === 'ping') return this.socket.send(JSON.stringify({ type: 'pong' }));
    if (message.type === 'pong') return;
    const entry = message.id === undefined ? undefined : this.subscriptions.get(message.id);
    if (!entry) return message.id === undefined ? this.onProblem(`unexpected frame: ${text.slice(0, 200)}`) : undefined;
    if (message.type === 'complete') return entry.end('completed by the server');
    if (message.type !== 'next') return entry.end(`contentRequestProgress: ${JSON.stringify(message.payload)}`);
    const update = message.payload?.data?.contentRequestProgress as { kind?: string; sequence?: string } | undefined;
    if (!update) return entry.end(`contentRequestProgress: ${JSON.stringify(message.payload?.errors ?? message)}`);
    if (update.kind === 'EVENT') this.event(entry, Number(update.sequence), at);
    else if (update.kind === 'SNAPSHOT') entry.lastSequence = Number(update.sequence);
    entry.markOpened();
  }

  private event(entry: Entry, sequence: number, at: number): void {
    entry.markOpened();
    entry.onEvent(entry, sequence, at);
    entry.lastSequence = sequence;
  }
}

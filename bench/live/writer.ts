/**
 * The load: an open-loop writer that commits request changes at a fixed rate
 * on a few connections, as the pipeline's workers would. One change is one
 * `progress` event: an UPDATE of content_requests.progress_percentage, which
 * the triggers turn into a request_events row and, at commit, one NOTIFY.
 *
 * Each change is keyed by request id and the event's sequence. The writer is
 * the only one changing its requests and never has two changes of one request
 * in flight, so it knows every sequence before the database assigns it; the
 * send time goes into a side map under that key before the statement leaves.
 *
 * Due changes are sent as they fall due. A connection that is busy holds them
 * back; when the writer is behind, the next free connection takes everything
 * due (up to `maxBatch` changes) in one statement: one transaction, many
 * events, as a busy worker fleet's commits would group. With `maxBatch` 1
 * every change is its own transaction.
 */
import pg from 'pg';
import { now } from '../lib/clock.js';

export type TrackedRequest = { id: string; sequence: number; busy: boolean };

export const changeKey = (requestId: string, sequence: number) => `${requestId}:${sequence}`;

const CHANGE_ONE = {
  name: 'bench_change_one',
  text: 'update content_requests set progress_percentage = progress_percentage % 98 + 1 where id = $1',
};
const CHANGE_MANY = {
  name: 'bench_change_many',
  text: 'update content_requests set progress_percentage = progress_percentage % 98 + 1 where id = any($1::uuid[])',
};

export type WriterRun = {
  /** Changes sent and committed. */
  changes: number;
  transactions: number;
  elapsedMs: number;
  /** Round trip of each transaction: just before sending to its commit's answer. */
  commitMs: number[];
};

export class ChangeWriter {
  private cursor = 0;

  private constructor(
    private readonly clients: pg.Client[],
    private readonly requests: TrackedRequest[],
  ) {}

  static async connect(url: string, connections: number, requests: TrackedRequest[]): Promise<ChangeWriter> {
    const clients: pg.Client[] = [];
    for (let i = 0; i < connections; i++) {
      const client = new pg.Client({ connectionString: url, application_name: 'tracker-bench:writer' });
      await client.connect();
      clients.push(client);
    }
    return new ChangeWriter(clients, requests);
  }

  /** Commits one change of `request` now, on the first connection; resolves with its key and send time. */
  async changeOne(request: TrackedRequest, onSend: (key: string, at: number) => void): Promise<number> {
    request.sequence++;
    const sentAt = now();
    onSend(changeKey(request.id, request.sequence), sentAt);
    await this.clients[0]!.query({ ...CHANGE_ONE, values: [request.id] });
    return now() - sentAt;
  }

  /** Sends changes at `rate` a second for `durationMs`; resolves when every one sent has committed. */
  run(
    options: { rate: number; durationMs: number; maxBatch: number },
    onSend: (keys: string[], at: number) => void,
  ): Promise<WriterRun> {
    const { rate, durationMs, maxBatch } = options;
    const total = Math.round((rate * durationMs) / 1000);
    const free = [...this.clients];
    const commitMs: number[] = [];
    let issued = 0;
    let transactions = 0;
    let inFlight = 0;
    let failed = false;
    let timer: NodeJS.Timeout | undefined;
    const start = now();

    return new Promise<WriterRun>((resolve, reject) => {
      const pump = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (failed) return;
        const elapsed = now() - start;
        const stopping = elapsed >= durationMs || issued >= total;
        if (!stopping) {
          let due = Math.min(total, Math.floor((elapsed / 1000) * rate)) - issued;
          while (due > 0 && free.length > 0) {
            const batch = this.take(Math.min(due, maxBatch));
            if (batch.length === 0) break; // every request has a change in flight
            const client = free.pop()!;
            for (const request of batch) {
              request.busy = true;
              request.sequence++;
            }
            const sentAt = now();
            onSend(
              batch.map((request) => changeKey(request.id, request.sequence)),
              sentAt,
            );
            issued += batch.length;
            due -= batch.length;
            transactions++;
            inFlight++;
            const sent =
              batch.length === 1
                ? client.query({ ...CHANGE_ONE, values: [batch[0]!.id] })
                : client.query({ ...CHANGE_MANY, values: [batch.map((request) => request.id)] });
            sent.then(
              () => {
                commitMs.push(now() - sentAt);
                for (const request of batch) request.busy = false;
                free.push(client);
                inFlight--;
                pump();
              },
              (error: unknown) => {
                failed = true;
                reject(error);
              },
            );
          }
          // Behind, with every connection (or request) busy: the next commit's answer pumps again.
          if (due > 0 && inFlight > 0) return;
        }
        if (stopping || issued >= total) {
          if (inFlight === 0) resolve({ changes: issued, transactions, elapsedMs: now() - start, commitMs });
          return; // the last commit's answer calls pump again
        }
        const nextDueAt = start + ((issued + 1) / rate) * 1000;
        timer = setTimeout(pump, Math.max(0, nextDueAt - now()));
      };
      pump();
    });
  }

  /** Up to `count` requests without a change in flight, round robin. */
  private take(count: number): TrackedRequest[] {
    const taken: TrackedRequest[] = [];
    const n = this.requests.length;
    for (let scanned = 0; scanned < n && taken.length < count; scanned++) {
      const request = this.requests[this.cursor]!;
      this.cursor = (this.cursor + 1) % n;
      if (!request.busy) taken.push(request);
    }
    return taken;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.end().catch(() => undefined)));
  }
}

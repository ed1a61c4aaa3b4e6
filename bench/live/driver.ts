/**
 * The live benchmark's client side, in its own process: the load writer, a
 * raw LISTEN client (the baseline) and GraphQL-over-WebSocket subscribers
 * (graphql-ws on `ws`, as a browser or phone would connect). The server under
 * test runs in the parent, so its heap and event loop hold nothing of ours.
 *
 * Every latency is taken here: the writer notes each change's send time under
 * its key (request id : sequence), every receiver looks the key up when the
 * change arrives, both on this process's clock.
 */
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { REQUEST_EVENTS_CHANNEL } from '../../src/services/live-events.js';
import { now, sleep, until, useClockBase } from '../lib/clock.js';
import { serveRpc } from '../lib/rpc.js';
import { roundSummary, summarize, type Summary } from '../lib/stats.js';
import { IdleSocket, type IdleSubscription } from './idle-client.js';
import { Tracker } from './tracker.js';
import { changeKey, ChangeWriter, type TrackedRequest } from './writer.js';
import { openedSignal } from '../lib/opened.js';

export type Path = 'raw' | 'progress' | 'feed';

export type InitParams = {
  databaseUrl: string;
  clockBase: string;
  writerConnections: number;
  pool: { id: string; sequence: number }[];
  broadcast: { id: string; sequence: number };
};

export type LoadParams = {
  paths: Path[];
  rate: number;
  warmupMs: number;
  durationMs: number;
  maxBatch: number;
  drainMs: number;
  /** Return each measured change's key and send time (to join with the server's own timestamps). */
  returnSends?: boolean;
};

export type PathResult = {
  /** Changes sent in the whole phase (warm-up included) and how many of them arrived, once each. */
  expected: number;
  received: number;
  missing: number;
  duplicates: number;
  /** Latency of the changes sent after the warm-up, in ms. */
  latency: Summary;
  /** Median latency of the changes sent in the first and the last third of the measured window. */
  firstThirdP50: number;
  lastThirdP50: number;
};

export type LoadResult = {
  rate: number;
  warmupMs: number;
  durationMs: number;
  /** Changes sent after the warm-up, per second of the measured window. */
  achievedRate: number;
  changes: number;
  transactions: number;
  commitMs: Summary;
  paths: Partial<Record<Path, PathResult>>;
  drainedMs: number;
  sends?: [string, number][];
};

export type FanoutRound = {
  sequence: number;
  sentAt: number;
  /** The writer's round trip for the change's transaction. */
  commitMs: number;
  /** From just before the change was sent until the first, the median and the last subscriber had it. */
  first: number;
  p50: number;
  last: number;
  received: number;
};

export type Integrity = {
  /** A progress subscription got a sequence other than its last + 1. */
  progressGaps: number;
  /** A feed subscription's cursor, or a raw notification's position, did not increase. */
  outOfOrder: number;
  /** Subscriptions the server ended or failed, with the first messages. */
  ended: number;
  errors: string[];
};

// ---------------------------------------------------------------------------
// State

let writer: ChangeWriter | undefined;
let pool: TrackedRequest[] = [];
let broadcast: TrackedRequest | undefined;
let databaseUrl = '';
let tracker: Tracker | undefined;
let rawListener: pg.Client | undefined;
let lastRawPosition = 0n;

const integrity: Integrity = { progressGaps: 0, outOfOrder: 0, ended: 0, errors: [] };

const PROGRESS = `subscription ($id: ID!) {
  contentRequestProgress(id: $id) {
    kind cursor requestId sequence status stage progressPercentage
    event { id sequence eventType createdAt }
  }
}`;

const UPDATES = `subscription {
  contentRequestUpdates {
    kind cursor requestId sequence status stage progressPercentage
    event { id sequence eventType createdAt }
  }
}`;

type UpdatePayload = { kind: 'SNAPSHOT' | 'EVENT'; cursor: string; requestId: string; sequence: string };

type Subscription = { opened: Promise<void>; ended: boolean; dispose(): void };

function connect(serverUrl: string, token: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = createClient({
      url: `${serverUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: 0,
      on: {
        connected: () => resolve(client),
        closed: (event) => reject(new Error(`socket closed before it was acknowledged: ${(event as { code?: number }).code}`)),
        error: (error) => reject(error instanceof Error ? error : new Error(String(error))),
      },
    });
  });
}

/** One subscription; `opened` resolves with its first message (the snapshot). */
function subscribe(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  field: string,
  onEvent: (payload: UpdatePayload, at: number) => void,
): Subscription {
  const { opened, markOpened, fail } = openedSignal();
  let disposed = false;
  const subscription: Subscription = { opened, ended: false, dispose: () => undefined };
  const end = (why: string) => {
    if (subscription.ended) return;
    subscription.ended = true;
    integrity.ended++;
    if (integrity.errors.length < 5) integrity.errors.push(why);
    fail(new Error(why));
  };
  const unsubscribe = client.subscribe<Record<string, UpdatePayload>>(
    { query, variables },
    {
      next: (message) => {
        const at = now();
        const payload = message.data?.[field];
        if (!payload) return end(`${field}: ${JSON.stringify(message.errors ?? message)}`);
        if (payload.kind === 'EVENT') onEvent(payload, at);
        markOpened();
      },
      error: (error) => end(`${field}: ${JSON.stringify(error instanceof Error ? error.message : error)}`),
      complete: () => {
        if (!disposed) end(`${field}: completed by the server`);
      },
    },
  );
  subscription.dispose = () => {
    disposed = true;
    subscription.ended = true;
    unsubscribe();
  };
  return subscription;
}

/** Opens `subscriptions` in chunks, so a socket is not handed tens of thousands at once. */
async function openAll<S extends { opened: Promise<void> }>(make: (i: number) => S, count: number, chunk = 1_000): Promise<S[]> {
  const opened: S[] = [];
  for (let i = 0; i < count; i += chunk) {
    const batch: S[] = [];
    for (let j = i; j < Math.min(count, i + chunk); j++) batch.push(make(j));
    opened.push(...batch);
    await Promise.all(batch.map((s) => s.opened));
  }
  return opened;
}

// The latency set: one progress subscription per pool request, and one admin feed.
const live = { sockets: [] as Client[], subscriptions: [] as Subscription[] };
// The idle set: sockets for the heap and fan-out figures, and what they hold (idle-client.ts: read cheaply).
const idle = {
  sockets: [] as IdleSocket[],
  subscriptions: [] as IdleSubscription[],
  onEvent: undefined as ((subscription: IdleSubscription, sequence: number, at: number) => void) | undefined,
};

/** What ended or broke on the idle set, counted as the latency set's are. */
function idleProblem(why: string) {
  integrity.ended++;
  if (integrity.errors.length < 5) integrity.errors.push(why);
}

function checkProgressOrder(lastByRequest: Map<string, number>, payload: UpdatePayload) {
  const sequence = Number(payload.sequence);
  const last = lastByRequest.get(payload.requestId);
  if (last !== undefined && sequence !== last + 1) integrity.progressGaps++;
  lastByRequest.set(payload.requestId, sequence);
}

// ---------------------------------------------------------------------------
// Methods

serveRpc(
  {
    async init(params: InitParams) {
      useClockBase(params.clockBase);
      databaseUrl = params.databaseUrl;
      pool = params.pool.map((request) => ({ ...request, busy: false }));
      broadcast = { ...params.broadcast, busy: false };
      writer = await ChangeWriter.connect(databaseUrl, params.writerConnections, pool);
      return { pid: process.pid };
    },

    async listenRaw() {
      rawListener = new pg.Client({ connectionString: databaseUrl, application_name: 'tracker-bench:raw-listener' });
      await rawListener.connect();
      rawListener.on('notification', (message) => {
        const at = now();
        const payload = JSON.parse(message.payload!) as { requestId: string; sequence: number; position: string };
        const position = BigInt(payload.position);
        if (position <= lastRawPosition) integrity.outOfOrder++;
        lastRawPosition = position;
        tracker?.receive('raw', changeKey(payload.requestId, payload.sequence), at);
      });
      await rawListener.query(`listen ${REQUEST_EVENTS_CHANNEL}`);
    },

    async unlistenRaw() {
      await rawListener?.end();
      rawListener = undefined;
    },

    async load(params: LoadParams): Promise<LoadResult> {
      const start = now();
      const phase = new Tracker(params.paths, start, params.warmupMs);
      tracker = phase;
      const run = await writer!.run(
        { rate: params.rate, durationMs: params.warmupMs + params.durationMs, maxBatch: params.maxBatch },
        (keys, at) => phase.sent(keys, at),
      );
      const drainStart = now();
      await until(() => phase.complete(), params.drainMs);
      const drainedMs = now() - drainStart;
      tracker = undefined;
      let measured = 0;
      for (const at of phase.sends.values()) if (at >= phase.measureFrom) measured++;
      return {
        rate: params.rate,
        warmupMs: params.warmupMs,
        durationMs: params.durationMs,
        achievedRate: measured / (params.durationMs / 1000),
        changes: run.changes,
        transactions: run.transactions,
        commitMs: roundSummary(summarize(run.commitMs)),
        paths: phase.result(params.durationMs),
        drainedMs,
        ...(params.returnSends
          ? { sends: [...phase.sends].filter(([, at]) => at >= phase.measureFrom) }
          : {}),
      };
    },

    async openLive(params: { serverUrl: string; token: string; subscriptionsPerSocket: number }) {
      const started = now();
      const socketCount = Math.ceil(pool.length / params.subscriptionsPerSocket) + 1;
      for (let i = 0; i < socketCount; i++) live.sockets.push(await connect(params.serverUrl, params.token));
      const lastSequence = new Map<string, number>();
      const progressSockets = live.sockets.slice(1);
      live.subscriptions = await openAll(
        (i) =>
          subscribe(progressSockets[i % progressSockets.length]!, PROGRESS, { id: pool[i]!.id }, 'contentRequestProgress', (payload, at) => {
            checkProgressOrder(lastSequence, payload);
            tracker?.receive('progress', changeKey(payload.requestId, Number(payload.sequence)), at);
          }),
        pool.length,
      );
      let lastCursor = 0n;
      const feed = subscribe(live.sockets[0]!, UPDATES, {}, 'contentRequestUpdates', (payload, at) => {
        const cursor = BigInt(payload.cursor);
        if (cursor <= lastCursor) integrity.outOfOrder++;
        lastCursor = cursor;
        tracker?.receive('feed', changeKey(payload.requestId, Number(payload.sequence)), at);
      });
      await feed.opened;
      live.subscriptions.push(feed);
      return { sockets: live.sockets.length, subscriptions: live.subscriptions.length, ms: now() - started };
    },

    liveEnded() {
      return live.subscriptions.filter((s) => s.ended).length;
    },

    async closeLive() {
      for (const subscription of live.subscriptions) subscription.dispose();
      live.subscriptions = [];
      await Promise.all(live.sockets.splice(0).map((socket) => socket.dispose()));
    },

    async connectSockets(params: { serverUrl: string; token: string; count: number }) {
      const started = now();
      for (let i = 0; i < params.count; i++) idle.sockets.push(await IdleSocket.open(params.serverUrl, params.token, idleProblem));
      return { ms: now() - started };
    },

    /** Opens one progress subscription per id (ids may repeat), spread over the idle sockets. */
    async subscribeIdle(params: { ids: string[] }) {
      const started = now();
      const offset = idle.subscriptions.length;
      const opened = await openAll(
        (i) =>
          idle.sockets[(offset + i) % idle.sockets.length]!.subscribe(PROGRESS, { id: params.ids[i]! }, (subscription, sequence, at) => {
            // Each change once, in order: anything but the last + 1 (a duplicate, a gap, a reordering) is counted.
            if (subscription.lastSequence !== 0 && sequence !== subscription.lastSequence + 1) integrity.progressGaps++;
            idle.onEvent?.(subscription, sequence, at);
          }),
        params.ids.length,
      );
      idle.subscriptions.push(...opened);
      return { ms: now() - started, subscriptions: idle.subscriptions.length };
    },

    async unsubscribeIdle() {
      for (const subscription of idle.subscriptions.splice(0)) subscription.dispose();
      // Let the `complete` messages leave before anyone measures the server.
      await sleep(50);
    },

    async disconnectSockets() {
      await Promise.all(idle.sockets.splice(0).map((socket) => socket.close()));
    },

    /**
     * One change of the broadcast request, `rounds` times: the time from just
     * before its commit was sent until each idle subscriber (all on that
     * request) had it.
     */
    async fanout(params: { rounds: number; warmupRounds: number; timeoutMs: number }) {
      const subscribers = idle.subscriptions.length;
      const rounds: FanoutRound[] = [];
      for (let round = 0; round < params.warmupRounds + params.rounds; round++) {
        const times = new Float64Array(subscribers);
        let received = 0;
        const expected = broadcast!.sequence + 1;
        // A subscriber counts once: its sequence was the one before (a duplicate or a gap is in integrity.progressGaps).
        idle.onEvent = (subscription, sequence, at) => {
          if (sequence === expected && subscription.lastSequence === expected - 1 && received < subscribers) times[received++] = at;
        };
        let sentAt = 0;
        const commitMs = await writer!.changeOne(broadcast!, (_key, at) => (sentAt = at));
        const complete = await until(() => received >= subscribers, params.timeoutMs, 1);
        idle.onEvent = undefined;
        if (!complete) throw new Error(`fan-out round ${round}: ${received} of ${subscribers} subscribers got the change`);
        const sorted = times.sort();
        if (round >= params.warmupRounds) {
          rounds.push({
            sequence: expected,
            sentAt,
            commitMs,
            first: sorted[0]! - sentAt,
            p50: sorted[Math.ceil(subscribers / 2) - 1]! - sentAt,
            last: sorted[subscribers - 1]! - sentAt,
            received,
          });
        }
        await sleep(100);
      }
      return rounds;
    },

    integrity() {
      return integrity;
    },
  },
  async () => {
    for (const subscription of [...live.subscriptions, ...idle.subscriptions]) subscription.dispose();
    await Promise.all([...live.sockets.map((socket) => socket.dispose()), ...idle.sockets.map((socket) => socket.close())]);
    await rawListener?.end().catch(() => undefined);
    await writer?.close();
  },
);

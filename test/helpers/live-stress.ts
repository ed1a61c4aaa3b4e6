/**
 * The setting of the live stress tests on a real PostgreSQL server: one app,
 * a writer pool connected up front (it carries on while the database refuses
 * new connections), subscribers over SSE and WebSocket closed after the
 * file, and what request_events holds to compare them with. The writes go
 * straight to the database, as a pipeline worker reporting progress would,
 * each in its own transaction: the subscriptions are what is under test.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { startTestApp, type TestApp } from './app.js';
import { committedFeedEvents, committedPosition, committedRequestEvents, listenerBackends, type LiveEvent } from './committed.js';
import { waitFor } from './database.js';
import { connectWs, subscribeSse, type LiveSubscription, type WsConnection } from './live.js';
import { onServer } from './postgres-admin.js';
import { driveTo, submitRequest, type Client } from './requests.js';

/** Registers the app, the pool and the clients' clean-up for the enclosing describe. */
export function useLiveStress() {
  let app: TestApp;
  let pool: pg.Pool;
  const tokens: Record<'student' | 'admin' | 'worker', string> = { student: '', admin: '', worker: '' };
  const as = (who: keyof typeof tokens): Client => ({ url: app.url, token: tokens[who] });
  const sockets: WsConnection[] = [];
  const open: LiveSubscription[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    // Connected up front and kept: the writer carries on while the database refuses new connections.
    pool = new pg.Pool({ connectionString: app.testDatabase.url!, max: 8, idleTimeoutMillis: 0, application_name: 'resilience-test-writer' });
    const clients = await Promise.all(Array.from({ length: 8 }, () => pool.connect()));
    for (const client of clients) client.release();
    tokens.student = await app.token({ sub: 'resilience-student', role: 'student', organization_id: 'resilience-org' });
    tokens.admin = await app.token({ sub: 'resilience-admin', role: 'admin' });
    tokens.worker = await app.token({ sub: 'resilience-worker', role: 'worker' });
  });
  afterAll(async () => {
    await Promise.all(open.map((subscription) => subscription.close()));
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await pool?.end();
    await app?.close();
  });

  // ---- clients -------------------------------------------------------------

  const sse = async (token: string, query: string, variables: Record<string, unknown>) => {
    const subscription = await subscribeSse(app.url, token, query, variables);
    expect(subscription.status).toBe(200);
    open.push(subscription);
    return subscription;
  };
  const ws = (token: string, query: string, variables: Record<string, unknown>) => {
    const socket = connectWs(app.url, token);
    sockets.push(socket);
    const subscription = socket.subscribe(query, variables);
    open.push(subscription);
    return subscription;
  };
  const subscribeOver = (transport: 'SSE' | 'WebSocket', token: string, query: string, variables: Record<string, unknown>) =>
    transport === 'SSE' ? sse(token, query, variables) : Promise.resolve(ws(token, query, variables));

  const events = (subscription: LiveSubscription) => subscription.payloads().filter((p) => p.kind === 'EVENT');
  /** Waits until the subscription's newest message is at least `sequence` (one request) or `position` (a feed). */
  const waitUntil = async (subscription: LiveSubscription, reached: (payload: Record<string, any>) => boolean, what: string, timeoutMs = 30_000) => {
    await waitFor(
      () => subscription.payloads().some(reached) || subscription.messages.some((m) => m.errors) || subscription.isEnded(),
      what,
      timeoutMs,
    );
    expect(subscription.messages.filter((m) => m.errors)).toEqual([]);
  };

  // ---- writes --------------------------------------------------------------

  const submit = async () => (await submitRequest(as('student'))).id;

  /** A request whose first three stages are done and whose video is being generated. */
  async function requestInVideoGeneration(): Promise<string> {
    const id = await submit();
    await driveTo(as('worker'), id, 'video_generation');
    return id;
  }

  /**
   * `count` progress reports on the request's video_generation stage, each in
   * its own transaction, `concurrency` at a time. Before report i it awaits
   * `gate(i)`, so a test can hold the writer at a point. The values jump
   * around, so most reports move the request's integer progress (an event),
   * and some do not (no event): request_events says which.
   */
  async function reportProgress(
    requestId: string,
    count: number,
    options: { concurrency?: number; gate?: (i: number) => Promise<void> | void; onReported?: (done: number) => void } = {},
  ) {
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        await options.gate?.(i);
        await pool.query(
          `update request_stages set progress_percentage = $1 where request_id = $2 and stage_name = 'video_generation'`,
          [(i * 37 + 11) % 100, requestId],
        );
        options.onReported?.(++done);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  }

  // ---- the truth -----------------------------------------------------------

  const db = () => app.testDatabase.database.db;
  const requestEventsAfter = (requestId: string, sequence: number) => committedRequestEvents(db(), requestId, sequence);
  const feedEventsAfter = (position: string) => committedFeedEvents(db(), position);
  const latestPosition = async () => String(await committedPosition(db()));

  async function requestRow(requestId: string) {
    const { rows } = await pool.query<{ progress_percentage: number; status: string }>(
      'select progress_percentage, status from content_requests where id = $1',
      [requestId],
    );
    return rows[0]!;
  }

  /** What a subscription of one request received, as (sequence, progress) pairs to hold against request_events. */
  const asSequenceAndProgress = (payloads: Record<string, any>[]) =>
    payloads.map((p) => ({ sequence: Number(p.sequence), progress: p.progressPercentage, position: p.cursor }));
  const rowsAsSequenceAndProgress = (rows: LiveEvent[]) =>
    rows.map((r) => ({ sequence: r.sequence, progress: r.progress, position: String(r.position) }));
  const feedView = (payloads: Record<string, any>[]) =>
    payloads.map((p) => ({ position: p.cursor, requestId: p.requestId, sequence: Number(p.sequence) }));
  const rowsAsFeed = (rows: LiveEvent[]) =>
    rows.map((r) => ({ position: String(r.position), requestId: r.requestId, sequence: r.sequence }));

  const strictlyIncreasing = (values: (string | number)[]) =>
    values.every((value, i) => i === 0 || BigInt(value) > BigInt(values[i - 1]!));

  // ---- the listener's backend ----------------------------------------------

  // Through the test's own pool: it stays connected while the database refuses new connections.
  const listenerPids = async () => (await listenerBackends(pool)).map((backend) => backend.pid);
  const restoredCount = () => app.logs.filter((line) => line.msg === 'notification connection restored').length;

  /** Lets the test database take new connections, or not (the existing ones carry on). */
  async function allowConnections(allowed: boolean) {
    const target = inject('testDatabase');
    if (target.kind !== 'postgres') throw new Error('postgres only');
    const name = new URL(app.testDatabase.url!).pathname.slice(1);
    // Not possible from a session of the database itself.
    await onServer(target.serverUrl, `alter database ${name} allow_connections ${allowed}`);
  }

  /** Terminates the server's listening backend and waits until it is gone. */
  async function killListener(): Promise<number> {
    const pids = await listenerPids();
    expect(pids).toHaveLength(1); // one listener for the whole process
    const { rows } = await pool.query<{ ok: boolean }>('select pg_terminate_backend($1, 5000) as ok', [pids[0]]);
    expect(rows[0]!.ok).toBe(true);
    return pids[0]!;
  }

  return {
    get app() {
      return app;
    },
    get pool() {
      return pool;
    },
    sse,
    ws,
    subscribeOver,
    events,
    waitUntil,
    submit,
    requestInVideoGeneration,
    reportProgress,
    requestEventsAfter,
    feedEventsAfter,
    latestPosition,
    requestRow,
    asSequenceAndProgress,
    rowsAsSequenceAndProgress,
    feedView,
    rowsAsFeed,
    strictlyIncreasing,
    listenerPids,
    restoredCount,
    allowConnections,
    killListener,
    tokens,
  };
}

/**
 * Live updates under stress, on a real PostgreSQL server (PGlite has one
 * connection, no backend to kill and no concurrent transactions):
 *
 * - 1,000 progress reports on one request while the server's listener backend
 *   is killed twice (pg_terminate_backend): SSE and WebSocket subscribers of
 *   the request, and admins' many-request feeds, get every event exactly once
 *   and in order, the catch-up after each reconnection filling the gaps;
 * - the many-request feed when transactions commit out of event-id order,
 *   live and when resuming from a cursor;
 * - a client that leaves mid-stream and resumes from its last sequence or
 *   cursor while a writer keeps going misses nothing and sees nothing twice.
 *
 * The writes go straight to the database from a pg pool (as a pipeline worker
 * that reports progress would, in its own transactions): the subscriptions
 * are what is under test, and request_events is the truth they are held to.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDatabaseKind, waitFor } from '../helpers/database.js';
import { parseRequestEventNotification, REQUEST_EVENTS_CHANNEL } from '../../src/db/notifications.js';
import { EventHub } from '../../src/live/hub.js';
import { silentLogger } from '../../src/logger.js';
import { eventsAfterPosition } from '../../src/services/feed.js';
import { committedFeedEvents, committedPosition, committedRequestEvents, listenerBackends, type LiveEvent } from '../helpers/committed.js';
import { onServer } from '../helpers/postgres-admin.js';
import { connectWs, PROGRESS, subscribeSse, UPDATES, type LiveSubscription, type WsConnection } from '../helpers/live.js';
import { driveTo, submitRequest, type Client } from '../helpers/requests.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('live updates under stress (PostgreSQL)', () => {
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

  // ---- a -------------------------------------------------------------------

  test(
    '1,000 progress reports while the listener backend is killed twice: every event, once, in order, on SSE, WebSocket and the feed',
    async () => {
      const id = await requestInVideoGeneration();
      const other = await requestInVideoGeneration(); // interleaved changes the request's subscribers must not get

      const overSse = await sse(tokens.student, PROGRESS, { id });
      const overWs = ws(tokens.student, PROGRESS, { id });
      const feedOverWs = ws(tokens.admin, UPDATES, {});
      const feedOverSse = await sse(tokens.admin, UPDATES, {});
      const [sseSnapshot] = await overSse.waitForPayloads(1);
      const [wsSnapshot] = await overWs.waitForPayloads(1);
      const [feedWsOpening] = await feedOverWs.waitForPayloads(1);
      const [feedSseOpening] = await feedOverSse.waitForPayloads(1);
      expect(sseSnapshot).toMatchObject({ kind: 'SNAPSHOT', requestId: id, status: 'GENERATING_VIDEO' });
      expect(wsSnapshot).toEqual(sseSnapshot);
      const snapshotSequence = Number(sseSnapshot!.sequence);
      const startPosition = await latestPosition();
      // The feed's opening snapshot is at the newest position (nothing is being written yet).
      expect(feedWsOpening).toMatchObject({ kind: 'SNAPSHOT', cursor: startPosition });
      expect(feedSseOpening).toMatchObject({ kind: 'SNAPSHOT', cursor: startPosition });
      const restoredBefore = restoredCount();

      // The writer pauses at report 300 until the first kill; the listener
      // comes straight back (pg-listen retries at once), racing the reports
      // that follow. At 650 it pauses until the listener is back and has been
      // killed again, this time with the database refusing new connections
      // until 150 more reports have committed: a gap the hub can only fill
      // from request_events once it is back.
      let reported = 0;
      const opened = () => {
        let open!: () => void;
        return Object.assign(new Promise<void>((resolve) => (open = resolve)), { open: () => open() });
      };
      const firstKilled = opened();
      const secondKilled = opened();
      const reconnectAllowed = opened();
      const killedPids: number[] = [];
      const outage: { reportedAtKill: number; reportedAtRestore: number }[] = [];
      const killer = (async () => {
        await waitFor(() => reported >= 300, 'report 300', 30_000);
        killedPids.push(await killListener());
        outage.push({ reportedAtKill: reported, reportedAtRestore: -1 });
        firstKilled.open();
        await waitFor(() => restoredCount() >= restoredBefore + 1, 'the listener to reconnect after the first kill', 20_000);
        outage[0]!.reportedAtRestore = reported;

        await waitFor(() => reported >= 650, 'report 650', 30_000);
        await allowConnections(false);
        try {
          killedPids.push(await killListener());
          outage.push({ reportedAtKill: reported, reportedAtRestore: -1 });
          secondKilled.open();
          await waitFor(() => reported >= 800, 'report 800', 30_000);
          expect(restoredCount()).toBe(restoredBefore + 1); // still away
        } finally {
          await allowConnections(true);
        }
        reconnectAllowed.open();
        await waitFor(() => restoredCount() >= restoredBefore + 2, 'the listener to reconnect after the second kill', 30_000);
        outage[1]!.reportedAtRestore = reported;
      })();
      const started = Date.now();
      await Promise.all([
        reportProgress(id, 1_000, {
          gate: (i) => (i >= 800 ? reconnectAllowed : i >= 650 ? secondKilled : i >= 300 ? firstKilled : undefined),
          onReported: (done) => (reported = done),
        }),
        reportProgress(other, 100, { concurrency: 1 }),
        killer,
      ]);
      const writeMs = Date.now() - started;
      expect(killedPids[0]).not.toBe(killedPids[1]);
      expect(await listenerPids()).toHaveLength(1);
      expect(killedPids).not.toContain((await listenerPids())[0]);

      // The truth: what request_events holds for the request, and for the feed.
      const expected = await requestEventsAfter(id, snapshotSequence);
      const expectedFeed = await feedEventsAfter(startPosition);
      expect(expected.length).toBeGreaterThan(500); // most reports moved the integer progress
      expect(expected.map((r) => r.sequence)).toEqual(expected.map((_, i) => snapshotSequence + 1 + i));
      const last = expected.at(-1)!;
      const lastFeed = expectedFeed.at(-1)!;

      await Promise.all([
        waitUntil(overSse, (p) => Number(p.sequence) >= last.sequence, `SSE to reach sequence ${last.sequence}`),
        waitUntil(overWs, (p) => Number(p.sequence) >= last.sequence, `WebSocket to reach sequence ${last.sequence}`),
        waitUntil(feedOverWs, (p) => BigInt(p.cursor) >= BigInt(lastFeed.position), `the WebSocket feed to reach ${lastFeed.position}`),
        waitUntil(feedOverSse, (p) => BigInt(p.cursor) >= BigInt(lastFeed.position), `the SSE feed to reach ${lastFeed.position}`),
      ]);
      // Anything doubled or late would show up now.
      await app.running.hub.caughtUp();

      for (const subscription of [overSse, overWs]) {
        const payloads = subscription.payloads();
        expect(payloads.filter((p) => p.kind === 'SNAPSHOT')).toHaveLength(1);
        expect(payloads.every((p) => p.requestId === id)).toBe(true);
        // Consecutive from the snapshot's sequence, no gap, no duplicate, in order, with the logged progress.
        expect(asSequenceAndProgress(events(subscription))).toEqual(rowsAsSequenceAndProgress(expected));
        expect(strictlyIncreasing(payloads.map((p) => p.cursor))).toBe(true);
        // And the last state is the request's.
        expect(payloads.at(-1)!.progressPercentage).toBe((await requestRow(id)).progress_percentage);
        expect(subscription.isEnded()).toBe(false);
      }
      for (const feed of [feedOverWs, feedOverSse]) {
        const feedEvents = events(feed);
        // Every event of every request (the admin's feed), in commit order, once.
        expect(feedView(feedEvents)).toEqual(rowsAsFeed(expectedFeed));
        // The opening snapshot's messages share one cursor; every event's is larger than the one before.
        expect(strictlyIncreasing([startPosition, ...feedEvents.map((p) => p.cursor)])).toBe(true);
        expect(feedEvents.filter((p) => p.requestId === other).length).toBeGreaterThan(0);
      }
      // The hub reconnected after each kill, and at least the second time 150
      // reports had committed while no one was listening.
      expect(restoredCount()).toBe(restoredBefore + 2);
      expect(outage[1]!.reportedAtRestore - outage[1]!.reportedAtKill).toBeGreaterThanOrEqual(150);
      console.info(
        `1,000 reports (+100 on another request) in ${writeMs} ms, listener killed twice ` +
          `(reports committed while it was away: ~${outage.map((o) => o.reportedAtRestore - o.reportedAtKill).join(', ')}): ` +
          `${expected.length} events of the request, ${expectedFeed.length} on the feed, all delivered`,
      );
    },
    120_000,
  );

  test('what commits while the listener is away arrives once it is back, even when nothing commits after', async () => {
    const id = await requestInVideoGeneration();
    const overSse = await sse(tokens.student, PROGRESS, { id });
    const feed = ws(tokens.admin, UPDATES, {});
    const [snapshot] = await overSse.waitForPayloads(1);
    await feed.waitForPayloads(1);
    const startPosition = await latestPosition();
    const restoredBefore = restoredCount();

    // No later notification will reveal the gap: only the catch-up on reconnection can fill it.
    await allowConnections(false);
    try {
      await killListener();
      await reportProgress(id, 50, { concurrency: 2 });
      expect(restoredCount()).toBe(restoredBefore);
    } finally {
      await allowConnections(true);
    }
    const expected = await requestEventsAfter(id, Number(snapshot!.sequence));
    const expectedFeed = await feedEventsAfter(startPosition);
    expect(expected.length).toBeGreaterThan(0);
    await waitUntil(overSse, (p) => Number(p.sequence) >= expected.at(-1)!.sequence, 'the catch-up to reach the subscriber');
    await waitUntil(feed, (p) => p.cursor === String(expectedFeed.at(-1)!.position), 'the catch-up to reach the feed');
    expect(restoredCount()).toBe(restoredBefore + 1);
    await app.running.hub.caughtUp();
    expect(asSequenceAndProgress(events(overSse))).toEqual(rowsAsSequenceAndProgress(expected));
    expect(feedView(events(feed))).toEqual(rowsAsFeed(expectedFeed));
  });

  test('a hub that starts while changes commit starts from the newest position, not from the beginning of history', async () => {
    const database = app.testDatabase.database;
    const listener = await database.createNotificationListener(silentLogger);
    // Registered before the hub's own handler, and called with it, for every notification.
    const notified: bigint[] = [];
    await listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => notified.push(parseRequestEventNotification(payload).position));
    const id = await submit();
    const change = (stage: string) =>
      pool.query(`insert into request_stages (request_id, stage_name, status) values ($1, $2, 'in_progress')`, [id, stage]);
    const catchUpsFrom: bigint[] = [];
    let startingPoint = 0n;
    const hub = await EventHub.start(
      {
        listener,
        eventsAfter: (position, limit) => {
          catchUpsFrom.push(position);
          return eventsAfterPosition(database.db, position, limit);
        },
        latestPosition: async () => {
          startingPoint = await committedPosition(database.db);
          // A change commits, and its notification reaches the hub, while it is still starting.
          await change('validation');
          await waitFor(() => notified.some((position) => position > startingPoint), 'the notification during start');
          return startingPoint;
        },
      },
      silentLogger,
    );
    try {
      // The change made during start is handled once start is done: it was the next position.
      await hub.settled();
      const duringStart = await committedPosition(database.db);
      expect(duringStart).toBe(startingPoint + 1n);
      expect(hub.position).toBe(duringStart);

      const delivered: bigint[] = [];
      hub.subscribe(`request:${id}`, (event) => delivered.push(event.position));
      await change('retrieval');
      await waitFor(() => delivered.length >= 1, 'the change after start');
      await hub.settled();
      expect(delivered).toEqual([duringStart + 1n]);
      expect(hub.position).toBe(duringStart + 1n);
      // Nothing was ever missing, so nothing was read back, least of all the whole history.
      expect(catchUpsFrom).toEqual([]);
    } finally {
      await hub.close();
      await listener.close();
    }
  });

  // ---- b -------------------------------------------------------------------

  test('out-of-order commits on the many-request feed: B (larger event id) then A, live and when resuming', async () => {
    const x = await submit();
    const y = await submit();
    const z = await submit();
    const startPosition = await latestPosition();
    const feed = ws(tokens.admin, UPDATES, {});
    const opening = await feed.waitForPayloads(1);
    expect(opening[0]).toMatchObject({ kind: 'SNAPSHOT', cursor: startPosition });
    // A client that was at the start position (its last cursor), resuming over SSE: a replay, then live.
    const replaying = await sse(tokens.admin, UPDATES, { after: startPosition });

    const a = await pool.connect();
    const b = await pool.connect();
    const startStage = `insert into request_stages (request_id, stage_name, status) values ($1, 'validation', 'in_progress')`;
    const newestEventId = async (client: pg.PoolClient, requestId: string) =>
      BigInt(
        (await client.query<{ id: string }>('select max(id)::text as id from request_events where request_id = $1', [requestId]))
          .rows[0]!.id,
      );
    let bPosition: string;
    let beforeA: LiveSubscription;
    try {
      await a.query('begin');
      await a.query(startStage, [x]);
      const aEventId = await newestEventId(a, x);
      await b.query('begin');
      await b.query(startStage, [y]);
      const bEventId = await newestEventId(b, y);
      expect(aEventId).toBeLessThan(bEventId); // A took the smaller id

      await b.query('commit');
      await waitUntil(feed, (p) => p.kind === 'EVENT' && p.requestId === y, "B's event on the live feed");
      const bEvent = events(feed).find((p) => p.requestId === y)!;
      bPosition = bEvent.cursor;
      expect(bEvent).toMatchObject({ requestId: y, status: 'VALIDATING', event: { eventType: 'STAGE_STARTED' } });

      // A client that saw B, left, and comes back with B's cursor while A is still open.
      const feedsBefore = app.running.hub.subscriberCountOf('all');
      beforeA = ws(tokens.admin, UPDATES, { after: bPosition });
      await waitFor(() => app.running.hub.subscriberCountOf('all') === feedsBefore + 1, 'the resumed feed on the hub');
      await app.running.hub.caughtUp();
      expect(beforeA.payloads()).toEqual([]); // nothing after B is committed yet

      await a.query('commit');
    } finally {
      a.release();
      b.release();
    }
    await waitUntil(feed, (p) => p.kind === 'EVENT' && p.requestId === x, "A's event on the live feed");
    const aPosition = events(feed).find((p) => p.requestId === x)!.cursor;
    // Committed later, so later on the feed, whatever the event ids say.
    expect(BigInt(aPosition)).toBeGreaterThan(BigInt(bPosition));
    expect(events(feed).map((p) => p.requestId)).toEqual([y, x]);

    // One more change after both, so each resumed client shows it has nothing doubled or missing before it.
    await pool.query(`insert into request_stages (request_id, stage_name, status) values ($1, 'validation', 'in_progress')`, [z]);
    const zPosition = String((await feedEventsAfter(aPosition))[0]!.position);
    // A client that saw B, left after A committed, and resumes with B's cursor: a replay of A.
    const afterA = await sse(tokens.admin, UPDATES, { after: bPosition });

    for (const subscription of [feed, replaying, beforeA!, afterA]) {
      await waitUntil(subscription, (p) => p.requestId === z, "Z's event");
    }
    await app.running.hub.caughtUp();
    const viewOf = (subscription: LiveSubscription) => events(subscription).map((p) => [p.requestId, p.cursor]);
    expect(viewOf(feed)).toEqual([[y, bPosition], [x, aPosition], [z, zPosition]]);
    expect(viewOf(replaying)).toEqual([[y, bPosition], [x, aPosition], [z, zPosition]]);
    expect(replaying.payloads().every((p) => p.kind === 'EVENT')).toBe(true);
    expect(viewOf(beforeA!)).toEqual([[x, aPosition], [z, zPosition]]);
    expect(viewOf(afterA)).toEqual([[x, aPosition], [z, zPosition]]);
    expect(afterA.payloads().every((p) => p.kind === 'EVENT')).toBe(true);
    // The database agrees: A's event has the smaller id and the larger position.
    const rows = await feedEventsAfter(startPosition);
    expect(rowsAsFeed(rows).map((r) => [r.requestId, r.position])).toEqual([[y, bPosition], [x, aPosition], [z, zPosition]]);
    expect(BigInt(rows[1]!.eventId)).toBeLessThan(BigInt(rows[0]!.eventId));
  });

  // ---- c -------------------------------------------------------------------

  describe.each(['SSE', 'WebSocket'] as const)('a client that leaves mid-stream and resumes, over %s', (transport) => {
    test(
      'with its last sequence (one request) and its last cursor (the feed): nothing missed, nothing twice',
      async () => {
        const id = await requestInVideoGeneration();
        const progress = await subscribeOver(transport, tokens.student, PROGRESS, { id });
        const feed = await subscribeOver(transport, tokens.admin, UPDATES, {});
        const [snapshot] = await progress.waitForPayloads(1);
        await feed.waitForPayloads(1);
        const snapshotSequence = Number(snapshot!.sequence);
        const startPosition = await latestPosition();

        // Phase 1 under way: both clients leave after 50 messages.
        const phase1 = reportProgress(id, 200, { concurrency: 2 });
        await progress.waitForPayloads(51);
        await feed.waitForPayloads(51);
        await Promise.all([progress.close(), feed.close()]);
        const seen = progress.payloads();
        const seenFeed = feed.payloads();
        await phase1;
        // Phase 2 while both are away; phase 3 runs as they come back.
        await reportProgress(id, 100, { concurrency: 2 });
        const lastSequence = seen.at(-1)!.sequence as string;
        const lastCursor = seenFeed.at(-1)!.cursor as string;
        const phase3 = reportProgress(id, 200, { concurrency: 2 });
        const resumed = await subscribeOver(transport, tokens.student, PROGRESS, { id, after: lastSequence });
        const resumedFeed = await subscribeOver(transport, tokens.admin, UPDATES, { after: lastCursor });
        await phase3;

        const expected = await requestEventsAfter(id, snapshotSequence);
        const expectedFeed = await feedEventsAfter(startPosition);
        const last = expected.at(-1)!;
        await waitUntil(resumed, (p) => Number(p.sequence) >= last.sequence, `the resumed stream to reach ${last.sequence}`);
        await waitUntil(resumedFeed, (p) => p.cursor === String(expectedFeed.at(-1)!.position), 'the resumed feed to reach the end');
        await app.running.hub.caughtUp();

        // Events were committed while the clients were away.
        expect(last.sequence).toBeGreaterThan(Number(lastSequence) + 10);
        // The resumed streams open with the missed events, not a snapshot.
        expect(resumed.payloads().every((p) => p.kind === 'EVENT')).toBe(true);
        expect(resumedFeed.payloads().every((p) => p.kind === 'EVENT')).toBe(true);
        expect(Number(resumed.payloads()[0]!.sequence)).toBe(Number(lastSequence) + 1);
        // Before and after the break, together: every event once, in order.
        expect(asSequenceAndProgress([...events(progress), ...resumed.payloads()])).toEqual(rowsAsSequenceAndProgress(expected));
        expect(feedView([...events(feed), ...resumedFeed.payloads()])).toEqual(rowsAsFeed(expectedFeed));
        expect(resumed.payloads().at(-1)!.progressPercentage).toBe((await requestRow(id)).progress_percentage);
      },
      60_000,
    );
  });
});

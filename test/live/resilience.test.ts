/**
 * Live updates while the server's listener is away, on a real PostgreSQL
 * server (PGlite has one connection and no backend to kill): 1,000 progress
 * reports on one request while the listener backend is killed twice
 * (pg_terminate_backend), SSE and WebSocket subscribers of the request and
 * admins' many-request feeds get every event exactly once and in order, the
 * catch-up after each reconnection filling the gaps; and a hub that starts
 * while changes commit starts from the newest position. The setting is in
 * test/helpers/live-stress.ts; request_events is the truth.
 */
import { describe, expect, test } from 'vitest';
import { parseLiveEventNotification, REQUEST_EVENTS_CHANNEL } from '../../src/services/live-events.js';
import { EventHub } from '../../src/live/hub.js';
import { silentLogger } from '../../src/logger.js';
import { eventsAfterPosition } from '../../src/services/live-reads.js';
import { committedPosition } from '../helpers/committed.js';
import { testDatabaseKind, waitFor } from '../helpers/database.js';
import { PROGRESS, UPDATES } from '../helpers/live.js';
import { useLiveStress } from '../helpers/live-stress.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('live updates under stress (PostgreSQL)', () => {
  const stress = useLiveStress();
  const {
    sse, ws, events, waitUntil, submit, requestInVideoGeneration, reportProgress, requestEventsAfter,
    feedEventsAfter, latestPosition, requestRow, asSequenceAndProgress, rowsAsSequenceAndProgress, feedView,
    rowsAsFeed, strictlyIncreasing, listenerPids, restoredCount, allowConnections, killListener, tokens,
  } = stress;

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
      await stress.app.running.hub.caughtUp();

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
    await stress.app.running.hub.caughtUp();
    expect(asSequenceAndProgress(events(overSse))).toEqual(rowsAsSequenceAndProgress(expected));
    expect(feedView(events(feed))).toEqual(rowsAsFeed(expectedFeed));
  });

  test('a hub that starts while changes commit starts from the newest position, not from the beginning of history', async () => {
    const database = stress.app.testDatabase.database;
    const listener = await database.createNotificationListener(silentLogger);
    // Registered before the hub's own handler, and called with it, for every notification.
    const notified: bigint[] = [];
    await listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => notified.push(parseLiveEventNotification(payload).position));
    const id = await submit();
    const change = (stage: string) =>
      stress.pool.query(`insert into request_stages (request_id, stage_name, status) values ($1, $2, 'in_progress')`, [id, stage]);
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

});

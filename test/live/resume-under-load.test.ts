/**
 * The many-request feed when transactions commit out of event-id order, live
 * and when resuming from a cursor; and a client that leaves mid-stream and
 * resumes from its last sequence or cursor while a writer keeps going misses
 * nothing and sees nothing twice. PostgreSQL only (PGlite has no concurrent
 * transactions); the setting is in test/helpers/live-stress.ts.
 */
import type pg from 'pg';
import { describe, expect, test } from 'vitest';
import { testDatabaseKind, waitFor } from '../helpers/database.js';
import { PROGRESS, UPDATES, type LiveSubscription } from '../helpers/live.js';
import { useLiveStress } from '../helpers/live-stress.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('live updates under stress (PostgreSQL)', () => {
  const stress = useLiveStress();
  const {
    sse, ws, subscribeOver, events, waitUntil, submit, requestInVideoGeneration, reportProgress,
    requestEventsAfter, feedEventsAfter, latestPosition, requestRow, asSequenceAndProgress,
    rowsAsSequenceAndProgress, feedView, rowsAsFeed, tokens,
  } = stress;

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

    const a = await stress.pool.connect();
    const b = await stress.pool.connect();
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
      const feedsBefore = stress.app.running.hub.subscriberCountOf('all');
      beforeA = ws(tokens.admin, UPDATES, { after: bPosition });
      await waitFor(() => stress.app.running.hub.subscriberCountOf('all') === feedsBefore + 1, 'the resumed feed on the hub');
      await stress.app.running.hub.caughtUp();
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
    await stress.pool.query(`insert into request_stages (request_id, stage_name, status) values ($1, 'validation', 'in_progress')`, [z]);
    const zPosition = String((await feedEventsAfter(aPosition))[0]!.position);
    // A client that saw B, left after A committed, and resumes with B's cursor: a replay of A.
    const afterA = await sse(tokens.admin, UPDATES, { after: bPosition });

    for (const subscription of [feed, replaying, beforeA!, afterA]) {
      await waitUntil(subscription, (p) => p.requestId === z, "Z's event");
    }
    await stress.app.running.hub.caughtUp();
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
        await stress.app.running.hub.caughtUp();

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

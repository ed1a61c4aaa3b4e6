/**
 * The live feed's cursor (drizzle/0005): every event gets a feed position at
 * commit, in commit order, and its notification carries it.
 */
import { asc, eq, isNull, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents } from '../../src/db/tables.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { recordRequestEvents, type RequestEventRecorder } from '../helpers/notifications.js';

let t: TestDatabase;
let recorder: RequestEventRecorder;
beforeAll(async () => {
  t = await createTestDatabase();
  recorder = await recordRequestEvents(t.database);
});
afterAll(async () => {
  await recorder?.close();
  await t?.close();
});

const positionsOf = async (requestId: string) =>
  (
    await t.database.db
      .select({ id: requestEvents.id, position: requestEvents.feedPosition })
      .from(requestEvents)
      .where(eq(requestEvents.requestId, requestId))
      .orderBy(asc(requestEvents.sequence))
  ).map((row) => row.position);

describe('feed positions', () => {
  test('every committed event has one, and its notification carries it', async () => {
    const request = await insertRequest(t.database.db);
    await t.database.db.update(contentRequests).set({ progressPercentage: 10 }).where(eq(contentRequests.id, request.id));
    const positions = await positionsOf(request.id);
    expect(positions).toHaveLength(2);
    expect(positions[1]! - positions[0]!).toBeGreaterThanOrEqual(1n);
    await expect.poll(() => recorder.received.filter((n) => n.requestId === request.id).length).toBe(2);
    expect(recorder.received.filter((n) => n.requestId === request.id).map((n) => n.position)).toEqual(positions);
    const unnumbered = await t.database.db.select().from(requestEvents).where(isNull(requestEvents.feedPosition));
    expect(unnumbered).toEqual([]);
  });

  test('a transaction with several events numbers them consecutively, in their order', async () => {
    const request = await insertRequest(t.database.db);
    await t.database.db.transaction(async (tx) => {
      for (const progress of [10, 20, 30]) {
        await tx.update(contentRequests).set({ progressPercentage: progress }).where(eq(contentRequests.id, request.id));
      }
    });
    const positions = (await positionsOf(request.id)).slice(1);
    expect(positions.map((p) => p! - positions[0]!)).toEqual([0n, 1n, 2n]);
  });

  test.skipIf(testDatabaseKind() !== 'postgres')(
    'transactions that commit out of id order get positions in commit order',
    async () => {
      const [first, second] = [await insertRequest(t.database.db), await insertRequest(t.database.db)];
      const a = new pg.Client({ connectionString: t.url });
      const b = new pg.Client({ connectionString: t.url });
      await Promise.all([a.connect(), b.connect()]);
      try {
        // A takes the smaller event id, B the larger; B commits first.
        await a.query('begin');
        await a.query('update content_requests set progress_percentage = 40 where id = $1', [first.id]);
        await b.query('begin');
        await b.query('update content_requests set progress_percentage = 60 where id = $1', [second.id]);
        await b.query('commit');
        // While A is open, B's event is visible and numbered; A's is not visible at all.
        const [bEvent] = (await t.database.db
          .select()
          .from(requestEvents)
          .where(eq(requestEvents.requestId, second.id))
          .orderBy(sql`${requestEvents.sequence} desc`)
          .limit(1))!;
        expect(bEvent!.feedPosition).not.toBeNull();
        await a.query('commit');
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
      const [aEvent] = await t.database.db
        .select()
        .from(requestEvents)
        .where(eq(requestEvents.requestId, first.id))
        .orderBy(sql`${requestEvents.sequence} desc`)
        .limit(1);
      const [bEvent] = await t.database.db
        .select()
        .from(requestEvents)
        .where(eq(requestEvents.requestId, second.id))
        .orderBy(sql`${requestEvents.sequence} desc`)
        .limit(1);
      expect(aEvent!.id).toBeLessThan(bEvent!.id); // inserted first ...
      expect(aEvent!.feedPosition!).toBe(bEvent!.feedPosition! + 1n); // ... committed second, next in the feed
      await expect.poll(() => recorder.received.find((n) => n.eventId === String(aEvent!.id))).toBeTruthy();
      const order = recorder.received.map((n) => n.eventId);
      expect(order.indexOf(String(bEvent!.id))).toBeLessThan(order.indexOf(String(aEvent!.id)));
    },
  );
});

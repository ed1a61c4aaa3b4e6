/**
 * Retention on both databases: exactly the finished requests untouched for
 * RETENTION_DAYS go, with their stages and events, in batches; in-flight
 * ones however old, and recently finished ones, stay as they were. Age is
 * set by moving updated_at back (test/helpers/age.ts).
 */
import { eq, inArray } from 'drizzle-orm';
import { beforeAll, afterAll, describe, expect, test } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { contentRequests, requestEvents, requestStages } from '../../src/db/tables.js';
import { latestPosition } from '../../src/services/live-reads.js';
import {
  countPurgeable,
  purgedThroughPosition,
  purgeFinishedRequests,
  retentionCutoff,
  retentionJob,
  type PurgeCounts,
} from '../../src/services/retention.js';
import { ageRequests } from '../helpers/age.js';
import { STAGES } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { reportStageIn } from '../helpers/requests.js';

let t: TestDatabase;
let db: Db;
beforeAll(async () => {
  t = await createTestDatabase();
  db = t.database.db;
});
afterAll(() => t.close());

async function completed(): Promise<string> {
  const { id } = await insertRequest(db);
  for (const stage of STAGES) {
    await reportStageIn(db, id, stage, 'in_progress');
    await reportStageIn(db, id, stage, 'completed');
  }
  return id;
}

async function failed(): Promise<string> {
  const { id } = await insertRequest(db);
  await reportStageIn(db, id, STAGES[0], 'in_progress');
  await reportStageIn(db, id, STAGES[0], 'failed', undefined, 'timed out');
  return id;
}

async function cancelled(): Promise<string> {
  const { id } = await insertRequest(db);
  await reportStageIn(db, id, STAGES[0], 'in_progress');
  await db.update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, id));
  return id;
}

async function inFlight(): Promise<string> {
  const { id } = await insertRequest(db);
  await reportStageIn(db, id, STAGES[0], 'in_progress');
  await reportStageIn(db, id, STAGES[0], 'completed');
  await reportStageIn(db, id, STAGES[1], 'in_progress', 40);
  return id;
}

const age = (ids: string[], days: number) => ageRequests(db, ids, days);

/** Rows of each request, its stages and its events: what must stay exactly as it was. */
async function rowsOf(ids: string[]) {
  const requests = await db.select().from(contentRequests).where(inArray(contentRequests.id, ids));
  const stages = await db.select().from(requestStages).where(inArray(requestStages.requestId, ids));
  const events = await db.select().from(requestEvents).where(inArray(requestEvents.requestId, ids));
  const byId = <T>(rows: T[], key: (row: T) => string) => [...rows].sort((a, b) => key(a).localeCompare(key(b)));
  return {
    requests: byId(requests, (r) => r.id),
    stages: byId(stages, (s) => s.id),
    events: byId(events, (e) => String(e.id).padStart(20, '0')),
  };
}

const countsOf = (rows: Awaited<ReturnType<typeof rowsOf>>): PurgeCounts => ({
  requests: rows.requests.length,
  stages: rows.stages.length,
  events: rows.events.length,
});

describe('retention', () => {
  let old: string[];
  let kept: string[];
  let keptBefore: Awaited<ReturnType<typeof rowsOf>>;
  let oldBefore: Awaited<ReturnType<typeof rowsOf>>;

  beforeAll(async () => {
    // Five finished 40 days ago: the purge's work, in three batches of at most two.
    old = [await completed(), await completed(), await completed(), await failed(), await cancelled()];
    await age(old, 40);
    // In flight and pending 40 days ago, and finished 29 days ago or just now: all kept.
    const staleInFlight = await inFlight();
    const stalePending = (await insertRequest(db)).id;
    await age([staleInFlight, stalePending], 40);
    const almostOld = await failed();
    await age([almostOld], 29);
    kept = [staleInFlight, stalePending, almostOld, await completed(), await cancelled()];
    oldBefore = await rowsOf(old);
    keptBefore = await rowsOf(kept);
  });

  test('RETENTION_DAYS=0 keeps everything: no cutoff, and the job removes nothing', async () => {
    expect(retentionCutoff(0)).toBeNull();
    await retentionJob({ days: 0, batchSize: 2, intervalMs: 60_000 }).run(db);
    expect(await rowsOf(old)).toEqual(oldBefore);
    expect(await rowsOf(kept)).toEqual(keptBefore);
  });

  test('a dry run counts exactly the old finished requests, their stages and events, and removes nothing', async () => {
    const counts = await countPurgeable(db, retentionCutoff(30)!);
    expect(counts).toEqual(countsOf(oldBefore));
    expect(counts.requests).toBe(5);
    expect(counts.events).toBeGreaterThan(counts.requests);
    expect(await rowsOf(old)).toEqual(oldBefore);
  });

  test('batches of two remove all five old finished requests with their stages and events, and keep the rest as it was', async () => {
    const positionsBefore = await latestPosition(db);
    const highestPurged = oldBefore.events.reduce((top, e) => (e.feedPosition! > top ? e.feedPosition! : top), 0n);
    const batches: PurgeCounts[] = [];
    const removed = await purgeFinishedRequests(db, {
      cutoff: retentionCutoff(30)!,
      batchSize: 2,
      afterBatch: (batch) => batches.push(batch),
    });

    expect(removed).toEqual(countsOf(oldBefore));
    expect(batches.map((batch) => batch.requests)).toEqual([2, 2, 1]);
    expect(countsOf(await rowsOf(old))).toEqual({ requests: 0, stages: 0, events: 0 });
    expect(await rowsOf(kept)).toEqual(keptBefore);
    // The watermark is the highest position removed; the feed's newest position never goes back.
    expect(await purgedThroughPosition(db)).toBe(highestPurged);
    expect(await latestPosition(db)).toBe(positionsBefore);
  });

  test('a second run finds nothing, and the job with RETENTION_DAYS=30 leaves the kept requests alone', async () => {
    expect(await countPurgeable(db, retentionCutoff(30)!)).toEqual({ requests: 0, stages: 0, events: 0 });
    await retentionJob({ days: 30, batchSize: 2, intervalMs: 60_000 }).run(db);
    expect(await rowsOf(kept)).toEqual(keptBefore);
  });

  test('the job with a shorter RETENTION_DAYS takes the request finished 29 days ago, and only it', async () => {
    const [almostOld] = kept.slice(2, 3);
    await retentionJob({ days: 20, batchSize: 2, intervalMs: 60_000 }).run(db);
    const left = await db.select({ id: contentRequests.id }).from(contentRequests).where(inArray(contentRequests.id, kept));
    expect(left.map((row) => row.id).sort()).toEqual(kept.filter((id) => id !== almostOld).sort());
  });
});

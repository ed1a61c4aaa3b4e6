/**
 * Concurrent writers of one request: the per-request sequence is taken under
 * the request's row lock, so it stays gap-free and follows commit order.
 */
import { asc, eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents } from '../../src/db/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { recordRequestEvents, type RequestEventRecorder } from '../helpers/notifications.js';

const WRITERS = 50;

let t: TestDatabase;
let recorder: RequestEventRecorder;
beforeAll(async () => {
  t = await createTestDatabase();
  recorder = await recordRequestEvents(t.database);
});
afterAll(async () => {
  await recorder.close();
  await t.close();
});

/** One UPDATE per progress value, all sent at once: over one connection each on a server, through the one PGlite instance otherwise. */
async function reportProgressConcurrently(requestId: string, values: number[]): Promise<void> {
  const statement = 'update content_requests set progress_percentage = $1 where id = $2';
  if (t.database.kind === 'pglite') {
    const { pglite } = t.database;
    await Promise.all(values.map((value) => pglite.query(statement, [value, requestId])));
    return;
  }
  const clients = values.map(() => new pg.Client({ connectionString: t.url }));
  await Promise.all(clients.map((client) => client.connect()));
  try {
    await Promise.all(clients.map((client, i) => client.query(statement, [values[i], requestId])));
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

describe(`${WRITERS} progress reports on one request at once`, () => {
  test('yield one event each, with consecutive sequences, notified in sequence order', async () => {
    const request = await insertRequest(t.database.db);
    const values = Array.from({ length: WRITERS }, (_, i) => i + 1);
    await reportProgressConcurrently(request.id, values);

    const events = await t.database.db
      .select()
      .from(requestEvents)
      .where(eq(requestEvents.requestId, request.id))
      .orderBy(asc(requestEvents.id));
    expect(events).toHaveLength(WRITERS + 1);
    expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: WRITERS + 1 }, (_, i) => i + 1));
    const progressEvents = events.filter((e) => e.eventType === 'progress');
    expect(progressEvents).toHaveLength(WRITERS);
    expect(new Set(progressEvents.map((e) => e.progressPercentage))).toEqual(new Set(values));

    // The last event is the row's final state.
    const [row] = await t.database.db.select().from(contentRequests).where(eq(contentRequests.id, request.id));
    expect(events.at(-1)!.progressPercentage).toBe(row!.progressPercentage);

    await recorder.waitForCount(WRITERS + 1);
    const sequences = recorder.received.filter((n) => n.requestId === request.id).map((n) => n.sequence);
    expect(sequences).toEqual(Array.from({ length: WRITERS + 1 }, (_, i) => i + 1));
  });
});

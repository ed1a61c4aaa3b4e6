/**
 * The live-event contract (services/live-events.ts): for the same event, the
 * notified form (the trigger's real NOTIFY payload, parsed) and the replayed
 * form (read back from request_events) are deep-equal, for every kind of
 * event a request's life produces.
 */
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { requestEvents } from '../../src/db/tables.js';
import { eventsAfterPosition, requestEventsAfter } from '../../src/services/live-reads.js';
import { cancelRequest, retryRequest, submitRequest } from '../../src/services/requests.js';
import { reportStage } from '../../src/services/stages.js';
import { STAGES } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertOrganization, insertUser } from '../helpers/factories.js';
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

const worker = { userId: 'contract-worker', role: 'worker', organizationId: null } as const;
const admin = { userId: 'contract-admin', role: 'admin', organizationId: null } as const;

async function submitFor(student: { userId: string; organizationId: string | null }, correlationId: string) {
  const { request } = await submitRequest(t.database.db, { ...student, role: 'student' }, { correlationId, topic: 'Tides', studentQuery: 'Why?' });
  return request.id;
}

const report = (requestId: string, stage: string, status: 'in_progress' | 'completed' | 'failed', progress?: number) =>
  reportStage(t.database.db, worker, { requestId, stage, status, progress, errorMessage: status === 'failed' ? 'no sources' : null });

test('the notified and the replayed form of each event are deep-equal', async () => {
  const db = t.database.db;
  const organization = await insertOrganization(db);
  const inOrganization = await insertUser(db, { organizationId: organization.organizationId });
  const onTheirOwn = await insertUser(db, { organizationId: null });

  // created, stage_started, progress, stage_completed, failure, retry, completed.
  const finished = await submitFor(inOrganization, 'contract-finished');
  await report(finished, 'validation', 'in_progress');
  await report(finished, 'validation', 'in_progress', 40);
  await report(finished, 'validation', 'completed');
  await report(finished, 'retrieval', 'failed');
  await retryRequest(db, admin, finished);
  for (const stage of STAGES) {
    await report(finished, stage, 'in_progress');
    await report(finished, stage, 'in_progress', 55);
    await report(finished, stage, 'completed');
  }
  // created and cancel, on a request with no organization.
  const cancelled = await submitFor(onTheirOwn, 'contract-cancelled');
  await cancelRequest(db, admin, cancelled);

  const [{ events } = { events: 0 }] = await db.select({ events: count() }).from(requestEvents);
  await recorder.waitForCount(events);
  const notified = [...recorder.received].sort((a, b) => (a.position < b.position ? -1 : 1));

  // The hub's catch-up read, and the one-request replay.
  const replayed = await eventsAfterPosition(db, 0n, 1_000);
  expect(replayed).toStrictEqual(notified);
  const replayedPerRequest = [
    ...(await requestEventsAfter(db, finished, 0, 1_000)),
    ...(await requestEventsAfter(db, cancelled, 0, 1_000)),
  ];
  expect(replayedPerRequest).toStrictEqual(notified);

  expect(new Set(notified.map((event) => event.eventType))).toEqual(
    new Set(['created', 'stage_started', 'progress', 'stage_completed', 'failure', 'retry', 'completed', 'cancel']),
  );
  expect(notified.find((event) => event.requestId === finished)?.organizationId).toBe(organization.organizationId);
  expect(notified.find((event) => event.requestId === cancelled)?.organizationId).toBeNull();
});

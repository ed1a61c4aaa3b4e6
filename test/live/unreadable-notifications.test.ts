/**
 * A notification the hub cannot parse is not dropped: the hub counts it and
 * catches up from request_events, so a subscriber still gets every event, in
 * order, once. On both databases, with a real server and an SSE client.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { REQUEST_EVENTS_CHANNEL } from '../../src/services/live-events.js';
import { requestEventsAfter } from '../../src/services/live-reads.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { PROGRESS, subscribeSse, type LiveSubscription } from '../helpers/live.js';

let app: TestApp;
let adminToken: string;
const open: LiveSubscription[] = [];
beforeAll(async () => {
  app = await startTestApp();
  adminToken = await app.token({ sub: 'unreadable-admin', role: 'admin' });
});
afterAll(async () => {
  await Promise.all(open.map((subscription) => subscription.close()));
  await app?.close();
});

const db = () => app.testDatabase.database.db;
const unreadable = () => app.running.hub.stats.unreadableNotifications;

/** A request, and an SSE subscriber to it that has had its snapshot. */
async function followedRequest() {
  const { id } = await insertRequest(db());
  const subscription = await subscribeSse(app.url, adminToken, PROGRESS, { id });
  open.push(subscription);
  await subscription.waitForPayloads(1);
  return { id, subscription };
}

// A pipeline worker's write: one progress event.
const setProgress = (id: string, progress: number) =>
  db().update(contentRequests).set({ progressPercentage: progress }).where(eq(contentRequests.id, id));

/** The subscriber got exactly the request's event log after its snapshot: no gap, nothing twice. */
async function expectWholeLog(id: string, subscription: LiveSubscription) {
  const log = await requestEventsAfter(db(), id, 1, 1_000);
  const payloads = await subscription.waitForPayloads(1 + log.length);
  expect(payloads.map((p) => [p.sequence, p.progressPercentage])).toEqual([
    ['1', 0],
    ...log.map((event) => [String(event.sequence), event.progress]),
  ]);
}

test('an event whose own notification cannot be parsed still arrives, read back from the table', async () => {
  const { id, subscription } = await followedRequest();
  // The publishing trigger out of step with the contract, as after a
  // migration that changed the payload and not its schema: progress as text.
  const [original] = (await db().execute(sql`select pg_get_functiondef('tg_request_events__publish'::regproc) as definition`))
    .rows as { definition: string }[];
  const outOfStep = original!.definition.replace(`'progress', NEW.progress_percentage`, `'progress', 'ten'`);
  expect(outOfStep).not.toBe(original!.definition);
  const before = unreadable();
  await db().execute(sql.raw(outOfStep));
  try {
    await setProgress(id, 10);
    // No later notification comes to reveal a gap: only the catch-up brings it.
    await subscription.waitForPayloads(2);
  } finally {
    await db().execute(sql.raw(original!.definition));
  }
  expect(unreadable()).toBe(before + 1);

  await setProgress(id, 20);
  await expectWholeLog(id, subscription);
});

test('notifications that are not the contract’s shape deliver nothing of their own', async () => {
  const { id, subscription } = await followedRequest();
  const [latest] = await requestEventsAfter(db(), id, 0, 1);
  const before = unreadable();
  const notify = (payload: string) => db().execute(sql`select pg_notify(${REQUEST_EVENTS_CHANNEL}, ${payload})`);
  await notify('not json');
  // The right shape, one field out of range: nothing of it may reach a subscriber.
  await notify(
    JSON.stringify({ ...latest, eventId: '999999', position: String(latest!.position + 1_000n), sequence: 2, eventType: 'progress', progress: 101 }),
  );
  await waitFor(() => unreadable() === before + 2, 'both notifications counted unreadable');

  await setProgress(id, 30);
  await expectWholeLog(id, subscription);
});

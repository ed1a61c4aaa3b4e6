/**
 * Retention seen from the API, on both databases: the service's own job
 * (every second here) removes a request finished long ago while a live feed
 * is open. The feed carries on undisturbed; resuming from a cursor into the
 * removed history is refused with BAD_USER_INPUT naming `after`, and from a
 * cursor after it works; resuming the removed request itself is refused on
 * `afterSequence`. The metric and the log count what went, with no content.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { contentRequests, requestEvents } from '../../src/db/tables.js';
import { purgedThroughPosition } from '../../src/services/retention.js';
import { ageRequests } from '../helpers/age.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { PROGRESS, subscribeSse, UPDATES, type LiveSubscription } from '../helpers/live.js';
import { driveToCompletion, reportStage, submitRequest, type Client } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<string, string> = {};
const open: LiveSubscription[] = [];
beforeAll(async () => {
  app = await startTestApp({ env: { RETENTION_DAYS: '30', RETENTION_INTERVAL_SECONDS: '1', RETENTION_BATCH_SIZE: '2' } });
  tokens.student = await app.token({ sub: 'keep-ana', role: 'student', organization_id: 'keep-org' });
  tokens.admin = await app.token({ sub: 'keep-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'keep-worker', role: 'worker' });
});
afterAll(async () => {
  await Promise.all(open.map((live) => live.close()));
  await app?.close();
});

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
const subscribe = async (token: string, query: string, variables: Record<string, unknown>) => {
  const live = await subscribeSse(app.url, token, query, variables);
  open.push(live);
  return live;
};

/** Polls the database until `check` holds (the job runs every second), failing with `what` after 20 s. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const errorOf = (live: LiveSubscription) => live.messages.find((message) => message.errors)?.errors?.[0];

test('a purge under an open feed: the feed carries on, a cursor into removed history is refused, one after it resumes', async () => {
  const db = app.running.database.db;
  const old = (await submitRequest(as('student'), { topic: 'Volcanoes of the Pacific rim' })).id;
  const current = (await submitRequest(as('student'))).id;
  const feed = await subscribe(tokens.admin!, UPDATES, {});
  await feed.waitForPayloads(2); // the two snapshots

  await driveToCompletion(as('worker'), old);
  await reportStage(as('worker'), current, 'validation', 'IN_PROGRESS');
  const [oldEvents] = await db.select({ n: sql<number>`count(*)::int` }).from(requestEvents).where(eq(requestEvents.requestId, old));
  // Two snapshots, the old request's events after its creation, and the current one's stage start.
  const beforePurge = await feed.waitForPayloads(2 + (oldEvents!.n - 1) + 1);
  const intoOldHistory = beforePurge.find((payload) => payload.kind === 'EVENT' && payload.requestId === old)!.cursor as string;

  await ageRequests(db, [old], 40);
  await eventually(async () => (await db.select().from(contentRequests).where(eq(contentRequests.id, old))).length === 0, 'the old request removed');
  expect(await db.select().from(requestEvents).where(eq(requestEvents.requestId, old))).toEqual([]);
  const watermark = await purgedThroughPosition(db);
  expect(watermark).toBeGreaterThan(BigInt(intoOldHistory));
  // The request in flight is untouched.
  expect((await db.select().from(contentRequests).where(eq(contentRequests.id, current)))[0]?.status).toBe('validating');

  // The open feed is undisturbed: the next change arrives, nothing went wrong.
  await reportStage(as('worker'), current, 'validation', 'COMPLETED');
  const afterPurge = await feed.waitForPayloads(beforePurge.length + 1);
  expect(afterPurge.at(-1)).toMatchObject({ requestId: current, event: { eventType: 'STAGE_COMPLETED' } });
  expect(feed.messages.some((message) => message.errors)).toBe(false);
  expect(feed.isEnded()).toBe(false);

  // A cursor into the removed history is refused, clearly and on the field.
  const refused = await subscribe(tokens.admin!, UPDATES, { after: intoOldHistory });
  await refused.ended;
  expect(refused.payloads()).toEqual([]);
  expect(errorOf(refused)?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  expect(errorOf(refused)?.message).toMatch(/retention/);

  // The cursor of the newest message is past the watermark: resuming from it works.
  const resumed = await subscribe(tokens.admin!, UPDATES, { after: afterPurge.at(-1)!.cursor });
  await reportStage(as('worker'), current, 'retrieval', 'IN_PROGRESS');
  const [next] = await resumed.waitForPayloads(1);
  expect(next).toMatchObject({ kind: 'EVENT', requestId: current, event: { eventType: 'STAGE_STARTED' } });

  // The removed request: resuming it is refused on afterSequence; watching it afresh finds nothing.
  const resumeRemoved = await subscribe(tokens.student!, PROGRESS, { id: old, after: '2' });
  await resumeRemoved.ended;
  expect(errorOf(resumeRemoved)?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'afterSequence' });
  const watchRemoved = await subscribe(tokens.student!, PROGRESS, { id: old });
  await watchRemoved.ended;
  expect(errorOf(watchRemoved)?.extensions?.code).toBe('NOT_FOUND');

  // Counted in the metric and the log, by kind; no request's content in the log.
  const metrics = await (await fetch(app.running.metricsUrl)).text();
  expect(metrics).toContain('tracker_retention_purged_total{kind="requests"} 1');
  expect(metrics).toContain('tracker_retention_purged_total{kind="stages"} 5');
  expect(metrics).toContain(`tracker_retention_purged_total{kind="events"} ${oldEvents!.n}`);
  const logged = app.logs.filter((line) => line.msg === 'retention removed finished requests');
  expect(logged.map((line) => line.removed)).toEqual([{ requests: 1, stages: 5, events: oldEvents!.n }]);
  expect(JSON.stringify(app.logs)).not.toContain('Volcanoes');
});

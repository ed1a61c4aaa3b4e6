/**
 * log_status_change(): one request_events row and one notification for every
 * change of status, current stage or progress, and nothing for other changes.
 */
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents, requestStages } from '../../src/db/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';
import { recordRequestEvents, type RequestEventRecorder } from '../helpers/notifications.js';

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

const eventsOf = (requestId: string) =>
  t.database.db
    .select()
    .from(requestEvents)
    .where(eq(requestEvents.requestId, requestId))
    .orderBy(asc(requestEvents.sequence));

const notificationsOf = (requestId: string) => recorder.received.filter((n) => n.requestId === requestId);

describe('one event row and one notification per change', () => {
  test('each change of status, stage or progress, in order, with matching payloads', async () => {
    const organization = await insertOrganization(t.database.db);
    const student = await insertUser(t.database.db, { organizationId: organization.organizationId });
    const request = await insertRequest(t.database.db, {
      studentId: student.userId,
      organizationId: organization.organizationId,
    });
    const db = t.database.db;
    const stage = (stageName: string, status: 'in_progress' | 'completed' | 'failed', progress = 0) =>
      db
        .insert(requestStages)
        .values({ requestId: request.id, stageName, status, progressPercentage: progress })
        .onConflictDoUpdate({
          target: [requestStages.requestId, requestStages.stageName],
          set: { status, progressPercentage: progress },
        });

    await stage('validation', 'in_progress'); // stage started (pending -> validating)
    await stage('validation', 'in_progress', 80); // progress
    await stage('validation', 'completed'); // stage completed
    await db.update(contentRequests).set({ progressPercentage: 7 }).where(eq(contentRequests.id, request.id)); // direct progress write
    await stage('retrieval', 'failed'); // failure (validating -> failed)
    await db.update(contentRequests).set({ status: 'pending' }).where(eq(contentRequests.id, request.id)); // retry
    await db.update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, request.id)); // cancel

    const expected = [
      ['created', null, 'pending'],
      ['stage_started', 'pending', 'validating'],
      ['progress', 'validating', 'validating'],
      ['stage_completed', 'validating', 'validating'],
      ['progress', 'validating', 'validating'],
      ['failure', 'validating', 'failed'],
      ['retry', 'failed', 'pending'],
      ['cancel', 'pending', 'cancelled'],
    ];
    const events = await eventsOf(request.id);
    expect(events.map((e) => [e.eventType, e.oldStatus, e.newStatus])).toEqual(expected);
    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events.find((e) => e.eventType === 'failure')).toMatchObject({ severity: 'error', stage: 'retrieval' });

    await recorder.waitForCount(expected.length);
    const notifications = notificationsOf(request.id);
    expect(notifications).toHaveLength(expected.length);
    notifications.forEach((notification, index) => {
      const event = events[index]!;
      expect(notification).toMatchObject({
        eventId: String(event.id),
        sequence: event.sequence,
        eventType: event.eventType,
        oldStatus: event.oldStatus,
        newStatus: event.newStatus,
        stage: event.stage,
        progress: event.progressPercentage,
        studentId: student.userId,
        organizationId: organization.organizationId,
      });
      expect(Number.isNaN(Date.parse(notification.createdAt))).toBe(false);
    });
  });

  test('a change to anything else writes no event and sends no notification', async () => {
    const request = await insertRequest(t.database.db);
    const db = t.database.db;
    await db
      .update(contentRequests)
      .set({ metadata: { note: 'edited' }, topic: 'Respiration', result: { draft: true } })
      .where(eq(contentRequests.id, request.id));
    // Then a tracked change: if the untracked one had notified, it would arrive first.
    await db.update(contentRequests).set({ progressPercentage: 3 }).where(eq(contentRequests.id, request.id));
    await expect
      .poll(() => notificationsOf(request.id).some((n) => n.eventType === 'progress' && n.progress === 3))
      .toBe(true);
    expect(notificationsOf(request.id).map((n) => [n.sequence, n.eventType])).toEqual([
      [1, 'created'],
      [2, 'progress'],
    ]);
    expect((await eventsOf(request.id)).map((e) => e.eventType)).toEqual(['created', 'progress']);
  });

  test('payloads stay small: no topic, query or error text', async () => {
    const request = await insertRequest(t.database.db, {
      topic: 'x'.repeat(500),
      studentQuery: 'secret question '.repeat(500),
    });
    await expect.poll(() => notificationsOf(request.id).length).toBe(1);
    const serialized = JSON.stringify(notificationsOf(request.id)[0], (_key, value: unknown) =>
      typeof value === 'bigint' ? value.toString() : value,
    );
    expect(serialized).not.toContain('secret question');
    expect(serialized.length).toBeLessThan(1000);
  });

  test('deleting a request cascades to its stages and events', async () => {
    const request = await insertRequest(t.database.db);
    const db = t.database.db;
    await db.insert(requestStages).values({ requestId: request.id, stageName: 'validation', status: 'in_progress' });
    expect((await eventsOf(request.id)).length).toBeGreaterThan(0);
    await db.delete(contentRequests).where(eq(contentRequests.id, request.id));
    expect(await eventsOf(request.id)).toEqual([]);
    expect(await db.select().from(requestStages).where(eq(requestStages.requestId, request.id))).toEqual([]);
  });
});

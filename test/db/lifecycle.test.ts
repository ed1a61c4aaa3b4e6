/**
 * The status lifecycle (docs/data-model.md), enforced by the database itself: every
 * pair of statuses tried through a real UPDATE.
 */
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, contentRequestStatus, requestEvents } from '../../src/db/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest, insertUser, readRequest } from '../helpers/factories.js';

type Status = (typeof contentRequestStatus.enumValues)[number];

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const forward: Status[] = [
  'pending',
  'validating',
  'retrieving',
  'generating_script',
  'generating_video',
  'processing_video',
  'completed',
];
const terminal: Status[] = ['completed', 'failed', 'cancelled'];

function allowed(from: Status, to: Status): boolean {
  if (to === 'failed' || to === 'cancelled') return !terminal.includes(from);
  if (from === 'failed') return to === 'pending';
  const at = forward.indexOf(from);
  return at >= 0 && forward[at + 1] === to;
}

/** The statuses a request passes through to reach `status`. */
function pathTo(status: Status): Status[] {
  if (status === 'failed' || status === 'cancelled') return [status];
  return forward.slice(1, forward.indexOf(status) + 1);
}

async function requestAt(status: Status) {
  const request = await insertRequest(t.database.db);
  for (const step of pathTo(status)) await setStatus(request.id, step);
  return request.id;
}

const setStatus = (id: string, status: Status) =>
  t.database.db.update(contentRequests).set({ status }).where(eq(contentRequests.id, id));

const eventCount = async (id: string) =>
  (await t.database.db.select({ n: count() }).from(requestEvents).where(eq(requestEvents.requestId, id)))[0]!.n;

describe('status transitions', () => {
  const statuses = contentRequestStatus.enumValues;

  for (const from of statuses) {
    test(`from ${from}: allowed moves succeed, every other one is refused and changes nothing`, async () => {
      const stuck = await requestAt(from);
      const before = await readRequest(t.database.db, stuck);
      const eventsBefore = await eventCount(stuck);
      for (const to of statuses) {
        if (to === from) continue;
        if (allowed(from, to)) {
          const id = await requestAt(from);
          await setStatus(id, to);
          expect((await readRequest(t.database.db, id)).status, `${from} -> ${to}`).toBe(to);
        } else {
          const refusal = await setStatus(stuck, to).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(refusal, `${from} -> ${to} must be refused`).toMatchObject({
            cause: expect.objectContaining({
              code: 'INVTR',
              message: expect.stringContaining(`cannot go from ${from} to ${to}`),
            }),
          });
        }
      }
      expect(await readRequest(t.database.db, stuck)).toEqual(before);
      expect(await eventCount(stuck)).toBe(eventsBefore);
    });
  }

  test('the allowed set is exactly the design’s', () => {
    const moves = statuses.flatMap((from) => statuses.filter((to) => to !== from && allowed(from, to)).map((to) => `${from}->${to}`));
    // 6 forward steps, 6 non-terminal -> failed, 6 non-terminal -> cancelled, 1 retry.
    expect(moves).toHaveLength(19);
  });

  test('a new request must start as pending', async () => {
    const student = await insertUser(t.database.db);
    await expect(
      t.database.db.insert(contentRequests).values({
        correlationId: 'starts-completed',
        studentId: student.userId,
        topic: 'x',
        studentQuery: 'y',
        status: 'completed',
      }),
    ).rejects.toMatchObject({ cause: expect.objectContaining({ code: 'INVTR' }) });
  });

  test('lifecycle timestamps and the retry count are kept by the database', async () => {
    const id = await requestAt('validating');
    expect((await readRequest(t.database.db, id)).startedAt).toBeInstanceOf(Date);
    await t.database.db
      .update(contentRequests)
      .set({ status: 'failed', errorMessage: 'boom' })
      .where(eq(contentRequests.id, id));
    const failed = await readRequest(t.database.db, id);
    expect(failed).toMatchObject({ status: 'failed', errorMessage: 'boom', errorStage: null, retryCount: 0 });
    expect(failed.failedAt).toBeInstanceOf(Date);

    await setStatus(id, 'pending');
    const retried = await readRequest(t.database.db, id);
    expect(retried).toMatchObject({ status: 'pending', retryCount: 1, errorMessage: null, failedAt: null });
    expect(retried.updatedAt.getTime()).toBeGreaterThanOrEqual(failed.updatedAt.getTime());
  });
});

/**
 * Two server processes on one PostgreSQL database, as two replicas: a change
 * made through either, or by a worker's raw SQL, shows in the pipeline
 * metrics of both, once, so each reports the same counts (which is why the
 * alert rules take the max across instances, not the sum).
 *
 * PGlite is one process per data folder: postgres project only.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { signToken } from '../../src/http/auth.js';
import { TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { driveToCompletion, submitRequest } from '../helpers/requests.js';
import { killAll, spawnReplica, START_TIMEOUT_MS, waitUntilReady, type Replica } from '../helpers/service-process.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('pipeline metrics on two replicas', () => {
  let testDatabase: TestDatabase;
  const services: Replica[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    for (const name of ['replica-a', 'replica-b']) services.push(await spawnReplica(testDatabase.url!, name));
    await Promise.all(services.map((service) => waitUntilReady(service, service.url)));
  }, START_TIMEOUT_MS * 2);

  afterAll(async () => {
    await killAll(services);
    await testDatabase?.close();
  });

  const transitions = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const count = (status: string) => Number(new RegExp(`^tracker_request_status_transitions_total\\{status="${status}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    return { pending: count('pending'), completed: count('completed'), failed: count('failed') };
  };

  test('a change through one replica, and one by raw SQL, are counted once by each', async () => {
    const [a, b] = services as [(typeof services)[0], (typeof services)[0]];
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    const student = { url: a.url, token: await signToken(secret, { sub: 'replica-metrics-student', role: 'student' }) };
    const worker = { url: b.url, token: await signToken(secret, { sub: 'replica-metrics-worker', role: 'worker' }) };

    // Submitted through A, driven through B.
    const { id } = await submitRequest(student);
    await driveToCompletion(worker, id);
    // A worker writing SQL directly, through neither replica.
    const direct = await insertRequest(testDatabase.database.db, { studentId: 'replica-metrics-student' });
    await testDatabase.database.db.update(contentRequests).set({ status: 'failed', errorStage: 'validation' }).where(eq(contentRequests.id, direct.id));

    const expected = { pending: 2, completed: 1, failed: 1 };
    // Each hub receives the notifications on its own; poll until both have (bounded), then compare.
    let seen = await Promise.all(services.map((service) => transitions(service.url)));
    for (let polls = 0; polls < 400 && !seen.every((counts) => counts.failed === 1 && counts.completed === 1); polls++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      seen = await Promise.all(services.map((service) => transitions(service.url)));
    }
    expect(seen).toEqual([expected, expected]);
  });
});

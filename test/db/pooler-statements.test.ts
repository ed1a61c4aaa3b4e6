/**
 * The hot paths' statements are built once in the service (no query building
 * per call) but sent unnamed: a named prepared statement lives on one server
 * connection, and through a transaction-mode pooler (pgbouncer before 1.21,
 * Debian's 1.18 included) the next transaction may run on a connection where
 * it does not exist ("prepared statement … does not exist"). With a pool of
 * one connection, everything the service sent is visible to that session.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getRequest, getRequestByCorrelationId, listRequests, submitRequest } from '../../src/services/requests.js';
import { reportStage } from '../../src/services/stages.js';
import { provisionViewer } from '../../src/services/users.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('statements a pooler can carry', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 1 });
  });
  afterAll(() => t?.close());

  test('submitting, reporting, listing and looking up leave no named prepared statement on the connection', async () => {
    const student = { userId: 'pooler-student', role: 'student', organizationId: 'pooler-org' } as const;
    const worker = { userId: 'pooler-worker', role: 'worker', organizationId: null } as const;
    await provisionViewer(t.database.db, student);
    await provisionViewer(t.database.db, worker);
    for (const correlationId of ['pooler-1', 'pooler-2']) {
      const { request } = await submitRequest(t.database.db, student, { correlationId, topic: 'Tides', studentQuery: 'Why?' });
      const reported = await reportStage(t.database.db, worker, { requestId: request.id, stage: 'validation', status: 'in_progress', progress: 10 });
      expect(reported.id).toBe(request.id);
    }
    const listed = (await listRequests(t.database.db, student, { first: 20 })).rows;
    expect(listed).toHaveLength(2);
    expect((await getRequest(t.database.db, worker, listed[0]!.id)).id).toBe(listed[0]!.id);
    expect((await getRequestByCorrelationId(t.database.db, student, 'pooler-1')).submittedCorrelationId).toBe('pooler-1');

    const { rows } = (await t.database.db.execute(sql`select name from pg_prepared_statements`)) as { rows: { name: string }[] };
    expect(rows.map((row) => row.name)).toEqual([]);
  });
});

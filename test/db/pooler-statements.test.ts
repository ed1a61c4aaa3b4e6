/**
 * The hot paths' statements are built once in the service (no query building
 * per call). With `DATABASE_PREPARED_STATEMENTS=unnamed` they are sent
 * unnamed: a named prepared statement lives on one server connection, and
 * through a transaction-mode pooler (pgbouncer before 1.21, Debian's 1.18
 * included) the next transaction may run on a connection where it does not
 * exist ("prepared statement … does not exist"). Named (the service's
 * default), each is prepared once per connection, and no more than
 * MAX_NAMED_STATEMENTS of them whatever shapes clients ask for. With a pool of
 * one connection, everything the service sent is visible to that session.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_NAMED_STATEMENTS } from '../../src/db/client.js';
import { getRequest, getRequestByCorrelationId, listRequests, submitRequest, type RequestColumn } from '../../src/services/requests.js';
import { reportStage } from '../../src/services/stages.js';
import { provisionViewer } from '../../src/services/users.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('statements a pooler can carry', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 1, preparedStatements: 'unnamed' });
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

describe.skipIf(testDatabaseKind() !== 'postgres')('named statements', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 1, preparedStatements: 'named' });
  });
  afterAll(() => t?.close());

  const prepared = async () =>
    ((await t.database.db.execute(sql`select name from pg_prepared_statements`)) as { rows: { name: string }[] }).rows.map((row) => row.name);

  test('the hot statements are prepared once on the connection, and at most MAX_NAMED_STATEMENTS whatever columns clients pick', async () => {
    const student = { userId: 'named-student', role: 'student', organizationId: 'named-org' } as const;
    const worker = { userId: 'named-worker', role: 'worker', organizationId: null } as const;
    await provisionViewer(t.database.db, student);
    await provisionViewer(t.database.db, worker);
    const { request } = await submitRequest(t.database.db, student, { correlationId: 'named-1', topic: 'Tides', studentQuery: 'Why?' });
    const reported = await reportStage(t.database.db, worker, { requestId: request.id, stage: 'validation', status: 'in_progress', progress: 10 });
    for (let i = 0; i < 3; i++) {
      expect((await listRequests(t.database.db, student, { first: 20 })).rows.map((row) => row.id)).toEqual([request.id]);
      expect((await getRequest(t.database.db, worker, request.id)).status).toBe(reported.status);
    }
    const afterHotPaths = await prepared();
    expect(afterHotPaths.length).toBeGreaterThanOrEqual(3);
    expect(afterHotPaths.length).toBeLessThan(10);

    // A client asking for every combination of a dozen columns: a new statement shape each time.
    const columns: RequestColumn[] = ['topic', 'studentQuery', 'gradeLevel', 'metadata', 'status', 'currentStage', 'progressPercentage', 'retryCount', 'result', 'errorMessage', 'errorStage', 'createdAt'];
    for (let mask = 1; mask < 2 * MAX_NAMED_STATEMENTS; mask++) {
      const chosen = new Set(columns.filter((_, bit) => mask & (1 << bit)));
      const [row] = (await listRequests(t.database.db, student, { first: 5, columns: chosen })).rows;
      expect(row!.id).toBe(request.id);
      if (chosen.has('topic')) expect(row!.topic).toBe('Tides');
    }
    expect((await prepared()).length).toBe(MAX_NAMED_STATEMENTS);
    // Past the budget, statements still run (unnamed).
    expect((await getRequestByCorrelationId(t.database.db, student, 'named-1')).id).toBe(request.id);
  });
});

/**
 * Named prepared statements (the default) through the running service, and
 * what a transaction-mode pooler does to them: a statement missing on the
 * connection (here deallocated under the service, as a pooler handing over
 * another server connection would leave it) is a masked INTERNAL_SERVER_ERROR
 * for the client and, in the log, a hint naming the setting to change.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { testDatabaseKind } from '../helpers/database.js';
import { insertRequest, insertUser } from '../helpers/factories.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('named prepared statements in the service', () => {
  let app: TestApp;
  let token: string;
  const PAGE = `{ contentRequests(first: 5) { edges { node { id topic } } } }`;

  beforeAll(async () => {
    // One connection: the statements the service prepares and the test's own statements share it.
    app = await startTestApp({ poolSize: 1 });
    const db = app.testDatabase.database.db;
    await insertUser(db, { userId: 'prepared-student', role: 'student' });
    await insertRequest(db, { studentId: 'prepared-student', correlationId: 'prepared-1' });
    token = await app.token({ sub: 'prepared-student', role: 'student' });
  });
  afterAll(() => app?.close());

  const prepared = async () =>
    ((await app.testDatabase.database.db.execute(sql`select name from pg_prepared_statements`)) as { rows: { name: string }[] }).rows.map((row) => row.name);

  test('a page is served by a statement prepared once on the connection', async () => {
    for (let i = 0; i < 3; i++) expect(dataOf(await app.graphql(PAGE, { token })).contentRequests.edges).toHaveLength(1);
    const names = await prepared();
    expect(names.length).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) await app.graphql(PAGE, { token });
    expect(await prepared()).toEqual(names);
  });

  test('a statement missing on the connection is answered masked and logged with the setting to change', async () => {
    await app.graphql(PAGE, { token });
    await app.testDatabase.database.db.execute(sql`deallocate all`);
    const response = await app.graphql(PAGE, { token });
    const error = response.errors?.[0];
    expect(error?.message).toBe('Unexpected error.');
    expect(error?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(response)).not.toContain('DATABASE_PREPARED_STATEMENTS');
    const logged = app.logs.find((line) => line.requestId === error?.extensions?.requestId && line.hint);
    expect(logged?.hint).toMatch(/DATABASE_PREPARED_STATEMENTS=unnamed/);
  });
});

/**
 * A viewer's first request stores their user and organization
 * (src/services/users.ts) while a query runs, not before it: one round trip
 * fewer in that request's wall time (bench/README.md, issue 13). The answer
 * still waits for the row; a mutation, and the `viewer` field, wait for it
 * before they run. Shown with the users table locked from another session,
 * so that provisioning cannot finish until the test lets it.
 */
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { users } from '../../src/db/tables.js';
import { dataOf, startTestApp, type GraphQLResponse, type TestApp } from '../helpers/app.js';
import { testDatabaseKind, waitFor } from '../helpers/database.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';

describe.skipIf(testDatabaseKind() !== 'postgres')("a viewer's first request", () => {
  const statements: string[] = [];
  let app: TestApp;
  let locker: pg.Client;

  beforeAll(async () => {
    app = await startTestApp({
      onQuery: (query) => statements.push(query),
      env: { STALL_CHECK_INTERVAL_SECONDS: '0', METRICS_ROLLUP_INTERVAL_SECONDS: '0', STAGE_ESTIMATES_REFRESH_SECONDS: '0', RETENTION_DAYS: '0' },
    });
    const db = app.testDatabase.database.db;
    await insertOrganization(db, { organizationId: 'first-org', name: 'first-org' });
    await insertUser(db, { userId: 'first-owner', role: 'student', organizationId: 'first-org' });
    await insertRequest(db, { studentId: 'first-owner', organizationId: 'first-org', correlationId: 'first-1' });
    locker = new pg.Client({ connectionString: app.testDatabase.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end();
    await app?.close();
  });

  /** Holds a lock every insert into users waits for, until the returned release is called. */
  async function lockUsers(): Promise<() => Promise<void>> {
    await locker.query('begin');
    await locker.query('lock table users in share row exclusive mode');
    return async () => {
      await locker.query('rollback');
    };
  }

  /** Whether a statement of the service is waiting for a lock (provisioning, behind lockUsers). */
  async function someoneWaitsForTheLock(): Promise<boolean> {
    const { rows } = await locker.query<{ n: string }>(
      `select count(*) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
    );
    return Number(rows[0]!.n) > 0;
  }

  test("a query runs while the viewer's row is being stored, and its answer waits for the row", async () => {
    const token = await app.token({ sub: 'first-admin', role: 'admin' });
    const release = await lockUsers();
    let answered = false;
    let response: Promise<GraphQLResponse>;
    try {
      statements.length = 0;
      response = app.graphql('{ contentRequests(first: 5) { edges { node { id topic } } } }', { token }).finally(() => {
        answered = true;
      });
      // The page's statement is sent although provisioning cannot finish.
      await waitFor(() => statements.some((s) => /from "content_requests"/.test(s)), 'the page query to be sent while provisioning waits');
      expect(statements.some((s) => /insert into "users"/.test(s))).toBe(true);
      expect(await someoneWaitsForTheLock()).toBe(true);
      expect(answered).toBe(false);
    } finally {
      await release();
    }
    expect(dataOf(await response).contentRequests.edges).toHaveLength(1);
    const stored = await app.testDatabase.database.db.select().from(users).where(eq(users.userId, 'first-admin'));
    expect(stored).toEqual([expect.objectContaining({ role: 'admin', organizationId: null })]);
  });

  test('a mutation waits for the row before it runs', async () => {
    const token = await app.token({ sub: 'first-student', role: 'student', organization_id: 'first-org' });
    const release = await lockUsers();
    let response: Promise<GraphQLResponse>;
    try {
      statements.length = 0;
      response = app.graphql(
        `mutation($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { request { id } } }`,
        { token, variables: { input: { correlationId: 'first-submit', topic: 'Tides', studentQuery: 'Why are there two a day?' } } },
      );
      await waitFor(() => statements.some((s) => /insert into "users"/.test(s)), 'provisioning to be sent');
      // Round trips on the other session: the service has every chance to go on, and must not.
      for (let i = 0; i < 5 && !(await someoneWaitsForTheLock()); i++) await locker.query('select 1');
      expect(await someoneWaitsForTheLock()).toBe(true);
      expect(statements.filter((s) => /content_requests/.test(s))).toEqual([]);
    } finally {
      await release();
    }
    expect(dataOf(await response).submitContentRequest.request.id).toBeTruthy();
  });

  test('a failure to store the row fails the request, coded, with no data', async () => {
    const token = await app.token({ sub: 'first-unlucky', role: 'admin' });
    const release = await lockUsers();
    try {
      statements.length = 0;
      const response = app.graphql('{ contentRequests(first: 5) { edges { node { id } } } }', { token });
      await waitFor(() => statements.some((s) => /insert into "users"/.test(s)), 'provisioning to be sent');
      for (let i = 0; i < 50 && !(await someoneWaitsForTheLock()); i++) await locker.query('select 1');
      // The provisioning statement's connection dies under it.
      await locker.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
      );
      const answer = await response;
      // As when provisioning ran before the query (the same answer on main before this change).
      expect(answer.status).toBe(503);
      expect(answer.data ?? null).toBeNull();
      expect(answer.errors?.map((e) => e.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
      expect(JSON.stringify(answer.errors)).not.toMatch(/terminat|users/i);
    } finally {
      await release();
    }
    expect(await app.testDatabase.database.db.select().from(users).where(eq(users.userId, 'first-unlucky'))).toEqual([]);
  });

  test('the viewer field reads the row once it is stored', async () => {
    const token = await app.token({ sub: 'first-newcomer', role: 'org_admin', organization_id: 'first-new-org' });
    const release = await lockUsers();
    let response: Promise<GraphQLResponse>;
    try {
      statements.length = 0;
      response = app.graphql('{ viewer { id role organization { id } } }', { token });
      await waitFor(() => statements.some((s) => /insert into "users"/.test(s)), 'provisioning to be sent');
    } finally {
      await release();
    }
    expect(dataOf(await response).viewer).toEqual({ id: 'first-newcomer', role: 'ORG_ADMIN', organization: { id: 'first-new-org' } });
  });
});

/**
 * A pool connection terminated mid-query (failover, a pooler restart, an idle
 * timeout: here pg_terminate_backend on the service's backends) fails that
 * request with a coded, retryable error; the process stays up, the pool opens
 * new connections and the next requests succeed. Against the service as a
 * real child process, as `npm start` runs it.
 *
 * PostgreSQL only: PGlite has no backends to terminate.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { exitWithin, freePort, spawnService, type ServiceProcess } from '../helpers/service-process.js';
import { submitRequest } from '../helpers/requests.js';

const SERVICE_APPLICATION = 'content-request-tracker';

describe.skipIf(testDatabaseKind() !== 'postgres')('a pool connection terminated mid-query', () => {
  let t: TestDatabase;
  let service: ServiceProcess;
  let url: string;
  let token: string;
  // The test's own connection, named apart from the service's pool.
  let admin: pg.Client;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = new pg.Client({ connectionString: t.url, application_name: 'pool-resilience-test' });
    await admin.connect();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    service = spawnService({
      DATABASE_URL: t.url!,
      JWT_SECRET: TEST_JWT_SECRET,
      PORT: String(port),
      HOST: '127.0.0.1',
      DEMO_DATA: 'false',
      METRICS_ROLLUP_INTERVAL_SECONDS: '0',
      RETENTION_DAYS: '0',
    });
    await service.waitForOutput(/content request tracker ready/);
    token = await signToken(new TextEncoder().encode(TEST_JWT_SECRET), { sub: 'pool-student', role: 'student', organization_id: 'pool-org' });
  }, 90_000);

  afterAll(async () => {
    if (service && !service.hasExited()) {
      service.child.kill('SIGTERM');
      await exitWithin(service, 10_000).catch(() => service.child.kill('SIGKILL'));
    }
    await admin?.end();
    await t?.close();
  });

  const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, ...((await response.json()) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] }) };
  };

  const serviceBackends = async (where = 'true') =>
    (
      await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and application_name = $1 and ${where}`,
        [SERVICE_APPLICATION],
      )
    ).rows.map((row) => row.pid);

  test('the request fails SERVICE_UNAVAILABLE (retryable), the process stays up, the next requests succeed', async () => {
    const { id } = await submitRequest({ url, token }, { correlationId: 'pool-1', topic: 'Glaciers', studentQuery: 'How do glaciers move?' });

    // Hold the row, so the service's cancel waits on it inside its transaction (a checked-out client).
    await admin.query('begin');
    await admin.query('select id from content_requests where id = $1 for update', [id]);
    const cancelling = graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { id status } }`, { id });
    let waiting: number[] = [];
    // The real signal: its backend shows up waiting on the lock.
    for (let i = 0; i < 500 && waiting.length === 0; i++) {
      waiting = await serviceBackends(`wait_event_type = 'Lock'`);
      if (!waiting.length) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(waiting).toHaveLength(1);

    // Every backend of the service's pool, the busy one and the idle ones.
    const killed = await serviceBackends();
    expect(killed).toContain(waiting[0]);
    await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [killed]);
    const failed = await cancelling;
    await admin.query('rollback');

    expect(failed.errors, JSON.stringify(failed)).toHaveLength(1);
    expect(failed.errors![0]!.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryable: true });
    expect(JSON.stringify(failed)).not.toMatch(/terminat|57P01|stack/i);
    expect(service.hasExited(), service.describe()).toBe(false);

    // The pool replaces its connections: reads and the retried write succeed.
    const read = await graphql(`query ($id: ID!) { contentRequest(id: $id) { status } }`, { id });
    expect(read.errors, JSON.stringify(read)).toBeUndefined();
    expect(read.data!.contentRequest.status).toBe('PENDING');
    const retried = await graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { status } }`, { id });
    expect(retried.errors, JSON.stringify(retried)).toBeUndefined();
    expect(retried.data!.cancelContentRequest.status).toBe('CANCELLED');
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const now = await serviceBackends();
    expect(now.length).toBeGreaterThan(0);
    expect(now.some((pid) => killed.includes(pid))).toBe(false);
    expect(service.hasExited()).toBe(false);
  }, 60_000);
});

/**
 * Stopping while an operation is still running for a client that has hung
 * up (a load balancer's client dropping during a deploy, a load test ending).
 * The connection is gone, so the server has nothing left to wait for; the
 * operation is not done. It must finish on an open database: before this
 * test, stop() closed the pool under it, its next statement failed with
 * "Cannot use a pool after calling end on the pool", logged as an error, and
 * the change was not made.
 *
 * The operation is held mid-way by a table lock on the mutation budget's
 * counters (its first statement waits; its insert comes after), which only a
 * second connection can hold: PostgreSQL only.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startService, type StartedService } from '../../bench/lib/service.js';
import { signToken } from '../../src/http/auth.js';
import { captureLogs, TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { submitRequest } from '../helpers/requests.js';

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created } }`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(testDatabaseKind() === 'postgres')('stopping with an operation in flight', () => {
  let testDatabase: TestDatabase;
  let holder: pg.Client;
  // pg_stat_activity is read from its own connection: inside the holder's transaction it would be one snapshot.
  let observer: pg.Client;
  let holderPid: number;
  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    holder = new pg.Client({ connectionString: testDatabase.url });
    observer = new pg.Client({ connectionString: testDatabase.url });
    await holder.connect();
    await observer.connect();
    holderPid = (await holder.query('select pg_backend_pid() as pid')).rows[0].pid;
  });
  afterAll(async () => {
    await holder?.end();
    await observer?.end();
    await testDatabase?.close();
  });

  /**
   * A service owning its pool (as `npm start` does; the test app's pool is the test's), a
   * student's submit held on the budget's table lock, its client hung up, and stop() called.
   */
  async function stopWithSubmitHeld(key: string, extra: Record<string, unknown>, graceSeconds: number, options = { hangUp: true }) {
    const { logger, logs } = captureLogs();
    const service: StartedService = await startService(
      { DATABASE_URL: testDatabase.url!, JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_MUTATIONS_PER_MINUTE: '100', SHUTDOWN_GRACE_SECONDS: String(graceSeconds) },
      { logger },
    );
    const token = await signToken(new TextEncoder().encode(TEST_JWT_SECRET), { sub: 'leaving-student', role: 'student', organization_id: 'stop-org' });
    // Provisioned and with a budget row already: the held statement is the budget's.
    await submitRequest({ url: service.running.url, token }, { correlationId: `before-${key}` });

    await holder.query('begin');
    await holder.query('lock table rate_limits in exclusive mode');
    const correlationId = `in-flight-at-stop-${key}`;
    const body = JSON.stringify({ query: SUBMIT, variables: { input: { correlationId, topic: 'Tides', studentQuery: 'Why two a day?' } }, ...extra });
    const client = request(`${service.running.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) },
    });
    client.on('error', () => undefined); // hung up below
    client.end(body);
    const waiting = async () =>
      Number((await observer.query(`select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).rows[0].count);
    while ((await waiting()) === 0) await sleep(20);

    if (options.hangUp) client.destroy();
    const stopped = service.stop();
    // Until the port refuses: the server has stopped listening.
    const port = Number(new URL(service.running.url).port);
    const refused = () =>
      new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), resolve(false)));
        socket.once('error', () => resolve(true));
      });
    while (!(await refused())) await sleep(20);
    const made = async () =>
      Number((await holder.query(`select count(*) from content_requests where submitted_correlation_id = $1`, [correlationId])).rows[0].count);
    return { logs, stopped, made };
  }

  // The direct path answers a plain body; one with `extensions` is read by yoga's Node adapter.
  test.each([
    ['the direct path', 'direct', {}],
    ["yoga's path", 'yoga', { extensions: {} }],
  ])('a mutation whose client hung up (%s) finishes before the database closes: committed, no error logged', async (_path, key, extra) => {
    const { logs, stopped, made } = await stopWithSubmitHeld(key, extra, 120);
    // A stop() that does not wait for operations goes on to close the pool: given a moment to get there.
    await sleep(300);
    await holder.query('commit');
    await stopped;

    expect(await made()).toBe(1);
    expect(logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(logs.at(-1)?.msg).toBe('stopped');
  }, 60_000);

  test('an operation still running when the grace period ends is not waited for: stop() says so and goes on', async () => {
    const { logs, stopped } = await stopWithSubmitHeld('grace', {}, 1);
    const abandoned = () => logs.find((line) => line.msg === 'grace period over: not waiting for requests still running');
    while (!abandoned()) await sleep(50);
    expect(abandoned()).toMatchObject({ level: 40, requests: 1 });
    // Closing the pool still waits for the statement it is running; the operation's next one fails.
    await holder.query('commit');
    await stopped;
    expect(logs.at(-1)?.msg).toBe('stopped');
  }, 60_000);

  test('the grace period ending while the server still waits for that client: stop() does not wait for its request after', async () => {
    const { logs, stopped } = await stopWithSubmitHeld('grace-open', {}, 1, { hangUp: false });
    while (!logs.some((line) => line.msg === 'grace period over: not waiting for requests still running')) await sleep(50);
    // It goes on closing: the listener and the pool's idle connections go while the held statement
    // still waits for the lock (before, the wait that began after the grace period waited for it).
    const others = async () =>
      Number((await observer.query(`select count(*) from pg_stat_activity where datname = current_database() and pid not in (pg_backend_pid(), $1)`, [holderPid])).rows[0].count);
    while ((await others()) > 1) await sleep(50);
    await holder.query('commit');
    await stopped;
    expect(logs.at(-1)?.msg).toBe('stopped');
  }, 60_000);
});

/**
 * The dashboard through failures it must ride out by itself: the service's
 * notification listener loses its database connection, then the service
 * process is replaced by a new one on the same database (the page's origin is
 * a TCP proxy that follows it). The page says "reconnecting", comes back
 * "live", and the detail view's event log ends complete, each event once.
 * With DATABASE_URL set (CI), on a fresh database on that server, where the
 * listener's connection can be terminated; on PGlite (an embedded listener
 * with no connection to lose) the restart alone.
 */
import type { Browser, Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startService, type StartedService } from '../../bench/lib/service.js';
import { connectPostgres, type Database } from '../../src/db/client.js';
import { migrateUp } from '../../src/db/migrate.js';
import { signToken } from '../../src/http/auth.js';
import { STAGES, TEST_JWT_SECRET } from '../helpers/app.js';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.js';
import { committedRequestEvents, listenerBackends } from '../helpers/committed.js';
import { createTestDatabase, testDatabaseKind, waitFor } from '../helpers/database.js';
import { databaseUrl, onServer, uniqueDatabaseName } from '../helpers/postgres-admin.js';
import { reportStage, reportStageIn, submitRequest } from '../helpers/requests.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const serverUrl = process.env.DATABASE_URL;

/** A migrated database of its own: on the server when there is one (its listener has a connection to kill), else PGlite. */
async function openDatabase(): Promise<{ database: Database; close(): Promise<void> }> {
  if (!serverUrl) {
    const testDatabase = await createTestDatabase();
    return { database: testDatabase.database, close: () => testDatabase.close() };
  }
  const name = uniqueDatabaseName('tracker_dashboard');
  await onServer(serverUrl, `create database ${name}`);
  const database = connectPostgres({ url: databaseUrl(serverUrl, name), poolSize: 5 });
  await migrateUp(database);
  return {
    database,
    async close() {
      await database.close();
      await onServer(serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

describe.skipIf(testDatabaseKind() !== 'pglite')('PGlite project', () => describeWithBrowser('the dashboard across a lost listener and a service restart', () => {
  let store: Awaited<ReturnType<typeof openDatabase>>;
  let service: StartedService;
  let proxy: TcpProxy;
  let browser: Browser;
  let page: Page;
  const tokens = { admin: '', student: '', worker: '' };
  const pageErrors: string[] = [];

  const start = () =>
    startService(
      { DATABASE_URL: 'postgres://unused.invalid/unused', JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_MUTATIONS_PER_MINUTE: '0' },
      { database: store.database, logger: pino({ level: 'silent' }) },
    );

  beforeAll(async () => {
    store = await openDatabase();
    service = await start();
    proxy = await startTcpProxy(service.running.url);
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    tokens.admin = await signToken(secret, { sub: 'reconnect-admin', role: 'admin' });
    tokens.student = await signToken(secret, { sub: 'reconnect-student', role: 'student', organization_id: 'reconnect-org' });
    tokens.worker = await signToken(secret, { sub: 'reconnect-worker', role: 'worker' });
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await service?.stop();
    await store?.close();
  });

  const connectionState = () => page.locator('[data-connection]').getAttribute('data-connection');
  const shownSequences = () =>
    page.locator('.events [data-sequence]').evaluateAll((items) => items.map((item) => Number(item.getAttribute('data-sequence'))));

  test('reconnecting, then live again; the event log complete, each event once, in order', { timeout: 90_000 }, async () => {
    const worker = () => ({ url: service.running.url, token: tokens.worker });
    const request = await submitRequest({ url: service.running.url, token: tokens.student }, { topic: 'Monsoons' });
    // Signed in as the admin, on the request's detail view, through the proxy.
    await page.goto(`${proxy.url}/`);
    await page.evaluate((token) => localStorage.setItem('tracker.token', token), tokens.admin);
    await page.goto(`${proxy.url}/#/requests/${request.id}`);
    await page.reload(); // a new hash alone does not load the page again
    await expect.poll(connectionState).toBe('live');
    await reportStage(worker(), request.id, STAGES[0], 'IN_PROGRESS');
    await expect.poll(shownSequences).toEqual([1, 2]);

    const { database } = store;
    if (database.kind === 'postgres') {
      // The listener's connection dies; the service re-listens and catches up what it missed meanwhile.
      const [listener] = await listenerBackends(database.pool);
      expect(listener).toBeDefined();
      await database.pool.query('select pg_terminate_backend($1)', [listener!.pid]);
      await reportStage(worker(), request.id, STAGES[0], 'COMPLETED');
      await expect.poll(shownSequences).toEqual([1, 2, 3]);
    }
    const before = (await shownSequences()).length;

    // The service goes away: its streams end and nothing answers for a while.
    await service.stop();
    await expect.poll(connectionState).toBe('reconnecting');
    // The request moves on while no service is up.
    if (database.kind === 'pglite') await reportStageIn(database.db, request.id, STAGES[0], 'completed');
    await reportStageIn(database.db, request.id, STAGES[1], 'in_progress');
    service = await start();
    proxy.retarget(service.running.url);
    await expect.poll(connectionState, { timeout: 20_000 }).toBe('live');

    await reportStage(worker(), request.id, STAGES[1], 'COMPLETED');
    const logged = (await committedRequestEvents(database.db, request.id, 0)).map((event) => Number(event.sequence));
    // Past the restart: the second stage started (the first completed, on PGlite) and completed.
    expect(logged.length).toBeGreaterThan(before + 1);
    await expect.poll(shownSequences, { timeout: 20_000 }).toEqual(logged);
    expect(await page.locator('.timeline li').count()).toBe(2);
    await waitFor(() => pageErrors.length === 0, 'no page error');
  });
}));

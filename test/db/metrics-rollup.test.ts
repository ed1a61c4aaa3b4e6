/**
 * The hourly rollup counts an outcome whenever it lands: a request created
 * hours ago that fails now moves its creation hour's bucket. Running it again
 * changes nothing, and `npm run metrics:backfill` recomputes a range.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { contentRequests, requestMetrics } from '../../src/db/tables.js';
import { rollupRequestMetrics } from '../../src/services/monitoring.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';
import { reportStageIn } from '../helpers/requests.js';
import { createScriptDatabase, runScript, type ScriptDatabase } from '../helpers/scripts.js';

const HOUR = 3_600_000;
const currentHour = Math.floor(Date.now() / HOUR) * HOUR;
/** "09:00" when it is 14:something now. */
const MORNING = new Date(currentHour - 5 * HOUR);

async function bucket(db: Db, organizationId: string, hour: Date) {
  const rows = await db
    .select()
    .from(requestMetrics)
    .where(and(eq(requestMetrics.organizationId, organizationId), eq(requestMetrics.metricHour, hour)));
  return rows[0];
}

const figures = (row: typeof requestMetrics.$inferSelect | undefined) =>
  row && {
    total: row.totalRequests,
    completed: row.completedRequests,
    failed: row.failedRequests,
    cancelled: row.cancelledRequests,
    errors: row.errorBreakdown,
  };

describe('the incremental rollup', () => {
  let testDatabase: TestDatabase;
  const db = () => testDatabase.database.db;
  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    await insertOrganization(db(), { organizationId: 'late-org', name: 'Late School' });
    await insertUser(db(), { userId: 'late-student', role: 'student', organizationId: 'late-org' });
  });
  afterAll(() => testDatabase?.close());

  let requestId: string;

  test('its first run counts a request created in the morning as in flight', async () => {
    requestId = (await insertRequest(db(), { studentId: 'late-student', organizationId: 'late-org', createdAt: new Date(MORNING.getTime() + 10 * 60_000) })).id;
    expect(await rollupRequestMetrics(db())).toBe(1);
    expect(figures(await bucket(db(), 'late-org', MORNING))).toEqual({ total: 1, completed: 0, failed: 0, cancelled: 0, errors: {} });
  });

  test('a failure that lands five hours after creation is counted in the creation hour', async () => {
    await reportStageIn(db(), requestId, 'validation', 'in_progress');
    await reportStageIn(db(), requestId, 'validation', 'failed', undefined, 'the topic was empty');
    expect(await rollupRequestMetrics(db())).toBe(1);
    expect(figures(await bucket(db(), 'late-org', MORNING))).toEqual({ total: 1, completed: 0, failed: 1, cancelled: 0, errors: { validation: 1 } });
  });

  test('a rerun with nothing new changes nothing, not even a row’s stamp', async () => {
    const before = await db().select().from(requestMetrics);
    expect(await rollupRequestMetrics(db())).toBe(0);
    expect(await rollupRequestMetrics(db())).toBe(0);
    expect(await db().select().from(requestMetrics)).toEqual(before);
  });

  test('a retry takes the failure back out of its bucket', async () => {
    // What retryContentRequest does to the row.
    await db().update(contentRequests).set({ status: 'pending' }).where(eq(contentRequests.id, requestId));
    expect(await rollupRequestMetrics(db())).toBe(1);
    expect(figures(await bucket(db(), 'late-org', MORNING))).toEqual({ total: 1, completed: 0, failed: 0, cancelled: 0, errors: {} });
  });
});

describe('npm run metrics:backfill', () => {
  let database: ScriptDatabase;
  const DAY_BEFORE = new Date(currentHour - 30 * HOUR);
  beforeAll(async () => {
    database = await createScriptDatabase();
    await database.use(async (db) => {
      await insertOrganization(db, { organizationId: 'backfill-org', name: 'Backfill School' });
      await insertUser(db, { userId: 'backfill-student', role: 'student', organizationId: 'backfill-org' });
      for (const minutes of [5, 25, 45]) {
        await insertRequest(db, { studentId: 'backfill-student', organizationId: 'backfill-org', createdAt: new Date(DAY_BEFORE.getTime() + minutes * 60_000) });
      }
      await insertRequest(db, { studentId: 'backfill-student', organizationId: 'backfill-org', createdAt: MORNING });
    });
  });
  afterAll(() => database?.close());

  const backfill = (from: string, to: string) => runScript('metrics-backfill.ts', ['--from', from, '--to', to], database.env);

  test('fills the hours of the range, and only those; a second run gives the same', async () => {
    const from = new Date(DAY_BEFORE.getTime() - HOUR).toISOString();
    const to = new Date(DAY_BEFORE.getTime() + 2 * HOUR).toISOString();
    const first = await backfill(from, to);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^recomputed 1 hour\(s\) with requests between /);
    const read = () =>
      database.use(async (db) => ({
        dayBefore: figures(await bucket(db, 'backfill-org', DAY_BEFORE)),
        morning: figures(await bucket(db, 'backfill-org', MORNING)),
      }));
    const filled = await read();
    expect(filled).toEqual({ dayBefore: { total: 3, completed: 0, failed: 0, cancelled: 0, errors: {} }, morning: undefined });

    expect((await backfill(from, to)).code).toBe(0);
    expect(await read()).toEqual(filled);
    // Four openings of a PGlite data folder (two runs, two reads) take a few seconds each on a busy machine.
  }, 120_000);
});

// Input checking happens before any database is opened: once is enough.
describe.skipIf(testDatabaseKind() !== 'pglite')('npm run metrics:backfill, given bad input', () => {
  test('refuses a bad range with a usage message that does not echo the input', async () => {
    const refusals = await Promise.all(
      [
        ['--from', 'yesterday<script>', '--to', '2026-11-02T00:00:00Z'],
        ['--from', '2026-11-02T00:00:00Z', '--to', '2026-11-01T00:00:00Z'],
        ['--from', '2020-01-01T00:00:00Z', '--to', '2026-01-01T00:00:00Z'],
        ['--to', '2026-11-02T00:00:00Z'],
      ].map((args) => runScript('metrics-backfill.ts', args, {})),
    );
    for (const result of refusals) {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/usage: npm run metrics:backfill/);
      expect(result.stderr).not.toContain('<script>');
    }
    // Four script processes starting at once on a busy machine.
  }, 90_000);
});

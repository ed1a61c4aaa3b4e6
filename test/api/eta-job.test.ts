/**
 * The estimates job as the service runs it, on both databases: it fills
 * stage_duration_estimates by itself, and a run that fails is logged and
 * retried at the next interval while the service keeps answering.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { dataOf, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { reportStageIn, submitRequest } from '../helpers/requests.js';

let app: TestApp;
let studentToken: string;
beforeAll(async () => {
  app = await startTestApp({ env: { STAGE_ESTIMATES_REFRESH_SECONDS: '1' } });
  studentToken = await app.token({ sub: 'eta-job-student', role: 'student', organization_id: 'eta-job-org' });
});
afterAll(() => app?.close());

const db = () => app.running.database.db;
const estimateCount = async (table = 'stage_duration_estimates') =>
  (await db().execute<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`)).rows[0]!.n;

test('the job fills the estimates by itself; a failed run is logged and the next one retries', async () => {
  const { id } = await submitRequest({ url: app.url, token: studentToken }, { topic: 'A topic only the student typed' });
  for (const stage of STAGES) {
    await reportStageIn(db(), id, stage, 'in_progress');
    await reportStageIn(db(), id, stage, 'completed');
  }
  await vi.waitFor(async () => expect(await estimateCount()).toBe(STAGES.length), { timeout: 15_000, interval: 100 });

  // The table out of the job's reach: every run fails until it is back.
  await db().execute(sql`alter table stage_duration_estimates rename to stage_duration_estimates_away`);
  await db().execute(sql`delete from stage_duration_estimates_away`);
  try {
    await vi.waitFor(
      () => expect(app.logs.some((line) => String(line.msg).startsWith('periodic job failed') && line.job === 'stage-estimates')).toBe(true),
      { timeout: 15_000, interval: 100 },
    );
    // Still serving.
    const response = await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { status } }`, { token: studentToken, variables: { id } });
    expect(dataOf(response).contentRequest.status).toBe('COMPLETED');
  } finally {
    await db().execute(sql`alter table stage_duration_estimates_away rename to stage_duration_estimates`);
  }
  await vi.waitFor(async () => expect(await estimateCount()).toBe(STAGES.length), { timeout: 15_000, interval: 100 });

  const failures = app.logs.filter((line) => String(line.msg).startsWith('periodic job failed'));
  expect(JSON.stringify(failures)).not.toContain('A topic only the student typed');
});

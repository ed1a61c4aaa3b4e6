/**
 * The hourly metrics the rollup writes into request_metrics, read through
 * real HTTP: what each hour counts, who may read which organization's, and
 * that running the rollup again changes nothing.
 */
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestMetrics } from '../../src/db/tables.js';
import { recomputeRequestMetrics } from '../../src/services/monitoring.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';

let app: TestApp;
let adminToken: string;
let workerToken: string;
beforeAll(async () => {
  app = await startTestApp();
  adminToken = await app.token({ sub: 'mon-admin', role: 'admin' });
  workerToken = await app.token({ sub: 'mon-worker', role: 'worker' });
});
afterAll(() => app?.close());

const db = () => app.testDatabase.database.db;

describe('requestMetrics', () => {
  const QUERY = `query ($organizationId: ID, $from: DateTime, $to: DateTime) {
    requestMetrics(organizationId: $organizationId, from: $from, to: $to) {
      hour organizationId totalRequests completedRequests failedRequests cancelledRequests
      successRate failureRate avgDurationSeconds p95DurationSeconds errorBreakdown
    }
  }`;
  const HOUR = 3_600_000;
  // Two whole hours well in the past (and one before them), away from the requests of the tests above.
  const currentHour = Math.floor(Date.now() / HOUR) * HOUR;
  const H0 = new Date(currentHour - 6 * HOUR);
  const H1 = new Date(currentHour - 5 * HOUR);
  const H2 = new Date(currentHour - 4 * HOUR);
  const END = new Date(currentHour - 3 * HOUR);
  const at = (hour: Date, minutes: number) => new Date(hour.getTime() + minutes * 60_000);

  const ORG_A = 'met-org-a';
  const ORG_B = 'met-org-b';
  let pendingInH1: string;
  const tokens: Record<string, string> = {};

  const metrics = (token: string, variables: Record<string, unknown> = {}) => app.graphql(QUERY, { token, variables });
  const buckets = async (token: string, variables: Record<string, unknown>) => dataOf(await metrics(token, variables)).requestMetrics;
  const range = { from: H1.toISOString(), to: END.toISOString() };

  async function request(student: string, organizationId: string | null, createdAt: Date) {
    return (await insertRequest(db(), { studentId: student, organizationId, createdAt })).id;
  }
  /** Walks the lifecycle by hand and stamps a completion `seconds` after creation. */
  async function complete(id: string, seconds: number) {
    for (const status of ['validating', 'retrieving', 'generating_script', 'generating_video', 'processing_video'] as const) {
      await db().update(contentRequests).set({ status }).where(eq(contentRequests.id, id));
    }
    await db()
      .update(contentRequests)
      .set({ status: 'completed', completedAt: sql`${contentRequests.createdAt} + make_interval(secs => ${seconds})` })
      .where(eq(contentRequests.id, id));
  }
  const fail = (id: string, stage: string) =>
    db().update(contentRequests).set({ status: 'failed', errorStage: stage, errorMessage: `${stage} broke` }).where(eq(contentRequests.id, id));
  const cancel = (id: string) => db().update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, id));

  beforeAll(async () => {
    await insertOrganization(db(), { organizationId: ORG_A, name: 'Metrics School A' });
    await insertOrganization(db(), { organizationId: ORG_B, name: 'Metrics School B' });
    await insertUser(db(), { userId: 'met-student-a', role: 'student', organizationId: ORG_A });
    await insertUser(db(), { userId: 'met-student-b', role: 'student', organizationId: ORG_B });
    await insertUser(db(), { userId: 'met-student-solo', role: 'student', organizationId: null });

    // Organization A, hour 1: 4 completed (60-240 s), 2 failed, 1 cancelled, 1 still pending.
    for (const [i, seconds] of [60, 120, 180, 240].entries()) await complete(await request('met-student-a', ORG_A, at(H1, 1 + i)), seconds);
    await fail(await request('met-student-a', ORG_A, at(H1, 10)), 'retrieval');
    await fail(await request('met-student-a', ORG_A, at(H1, 11)), 'video_generation');
    await cancel(await request('met-student-a', ORG_A, at(H1, 12)));
    pendingInH1 = await request('met-student-a', ORG_A, at(H1, 59));
    // Organization A, hour 2: 1 completed (30 s), 1 failed at retrieval.
    await complete(await request('met-student-a', ORG_A, at(H2, 0)), 30);
    await fail(await request('met-student-a', ORG_A, at(H2, 30)), 'retrieval');
    // Organization B, hour 1: 3 failed (2 at validation, 1 at retrieval); hour 0: 1 completed.
    await fail(await request('met-student-b', ORG_B, at(H1, 5)), 'validation');
    await fail(await request('met-student-b', ORG_B, at(H1, 6)), 'validation');
    await fail(await request('met-student-b', ORG_B, at(H1, 7)), 'retrieval');
    await complete(await request('met-student-b', ORG_B, at(H0, 30)), 90);
    // No organization, hour 2: 1 cancelled.
    await cancel(await request('met-student-solo', null, at(H2, 45)));

    tokens.orgAdminA = await app.token({ sub: 'met-org-admin-a', role: 'org_admin', organization_id: ORG_A });
    tokens.student = await app.token({ sub: 'met-student-a', role: 'student', organization_id: ORG_A });
  });

  const orgAHour1 = {
    hour: H1.toISOString(),
    organizationId: ORG_A,
    totalRequests: 8,
    completedRequests: 4,
    failedRequests: 2,
    cancelledRequests: 1,
    successRate: 50,
    failureRate: 25,
    avgDurationSeconds: 150,
    p95DurationSeconds: 231, // 180 + 0.85 × 60, interpolated
    errorBreakdown: { retrieval: 1, video_generation: 1 },
  };
  const orgBHour1 = {
    hour: H1.toISOString(),
    organizationId: ORG_B,
    totalRequests: 3,
    completedRequests: 0,
    failedRequests: 3,
    cancelledRequests: 0,
    successRate: 0,
    failureRate: 100,
    avgDurationSeconds: null,
    p95DurationSeconds: null,
    errorBreakdown: { validation: 2, retrieval: 1 },
  };
  const orgAHour2 = {
    hour: H2.toISOString(),
    organizationId: ORG_A,
    totalRequests: 2,
    completedRequests: 1,
    failedRequests: 1,
    cancelledRequests: 0,
    successRate: 50,
    failureRate: 50,
    avgDurationSeconds: 30,
    p95DurationSeconds: 30,
    errorBreakdown: { retrieval: 1 },
  };
  const noOrgHour2 = {
    hour: H2.toISOString(),
    organizationId: null,
    totalRequests: 1,
    completedRequests: 0,
    failedRequests: 0,
    cancelledRequests: 1,
    successRate: 0,
    failureRate: 0,
    avgDurationSeconds: null,
    p95DurationSeconds: null,
    errorBreakdown: {},
  };

  test('nothing before the rollup has run', async () => {
    expect(await buckets(adminToken, range)).toEqual([]);
  });

  test('the rollup from the middle of an hour covers that whole hour, and not the hour before', async () => {
    await recomputeRequestMetrics(db(), { from: at(H1, 30), to: new Date() });
    const all = await buckets(adminToken, { from: H0.toISOString(), to: END.toISOString() });
    // Hour by hour, organizations in order, requests without one last.
    expect(all).toEqual([orgAHour1, orgBHour1, orgAHour2, noOrgHour2]);
  });

  test('an admin reads one organization', async () => {
    expect(await buckets(adminToken, { ...range, organizationId: ORG_B })).toEqual([orgBHour1]);
    expect(await buckets(adminToken, { ...range, organizationId: ORG_A })).toEqual([orgAHour1, orgAHour2]);
    expect(await buckets(adminToken, { ...range, organizationId: 'met-org-unknown' })).toEqual([]);
    // [from, to): an hour bucket exactly at `to` is out.
    expect(await buckets(adminToken, { from: H1.toISOString(), to: H2.toISOString(), organizationId: ORG_A })).toEqual([orgAHour1]);
  });

  test('an org admin reads their own organization (by default too); another one is FORBIDDEN', async () => {
    expect(await buckets(tokens.orgAdminA!, range)).toEqual([orgAHour1, orgAHour2]);
    expect(await buckets(tokens.orgAdminA!, { ...range, organizationId: ORG_A })).toEqual([orgAHour1, orgAHour2]);
    // The default range is the last 24 hours.
    expect(await buckets(tokens.orgAdminA!, {})).toEqual([orgAHour1, orgAHour2]);

    const response = await metrics(tokens.orgAdminA!, { ...range, organizationId: ORG_B });
    expect(onlyError(response).extensions?.code).toBe('FORBIDDEN');
    expect(response.data?.requestMetrics ?? null).toBeNull();
  });

  test('students and workers are FORBIDDEN; without a token, UNAUTHENTICATED', async () => {
    for (const variables of [range, { ...range, organizationId: ORG_A }]) {
      expect(onlyError(await metrics(tokens.student!, variables)).extensions?.code).toBe('FORBIDDEN');
      expect(onlyError(await metrics(workerToken, variables)).extensions?.code).toBe('FORBIDDEN');
    }
    expect(onlyError(await app.graphql(QUERY, { variables: range })).extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('a range the wrong way round, or too long, is BAD_USER_INPUT', async () => {
    const backwards = onlyError(await metrics(adminToken, { from: END.toISOString(), to: H1.toISOString() }));
    expect(backwards.extensions?.code).toBe('BAD_USER_INPUT');
    expect(backwards.message).toMatch(/^from: /);
    const tooLong = onlyError(await metrics(adminToken, { from: '2020-01-01T00:00:00Z', to: END.toISOString() }));
    expect(tooLong.extensions?.code).toBe('BAD_USER_INPUT');
    expect(tooLong.message).toMatch(/^to: .*93 days/);
  });

  test('the rollup is idempotent: run again, the same numbers and no extra rows', async () => {
    const rowsBefore = await db().select().from(requestMetrics);
    await recomputeRequestMetrics(db(), { from: at(H1, 30), to: new Date() });
    await recomputeRequestMetrics(db(), { from: at(H1, 30), to: new Date() });
    const rowsAfter = await db().select().from(requestMetrics);
    expect(rowsAfter.length).toBe(rowsBefore.length);
    const byKey = (rows: typeof rowsBefore) =>
      rows
        .map(({ organizationId, metricHour, totalRequests, completedRequests, failedRequests, cancelledRequests, avgDurationSeconds, p95DurationSeconds, errorBreakdown }) =>
          JSON.stringify([organizationId, metricHour.toISOString(), totalRequests, completedRequests, failedRequests, cancelledRequests, avgDurationSeconds, p95DurationSeconds, errorBreakdown]),
        )
        .sort();
    expect(byKey(rowsAfter)).toEqual(byKey(rowsBefore));
    expect(await buckets(adminToken, { from: H0.toISOString(), to: END.toISOString() })).toEqual([orgAHour1, orgBHour1, orgAHour2, noOrgHour2]);
  });

  test('a later run recomputes a bucket whose requests changed, and reaches back as far as asked', async () => {
    await complete(pendingInH1, 300);
    await recomputeRequestMetrics(db(), { from: H0, to: new Date() });
    const [a1] = await buckets(adminToken, { from: H1.toISOString(), to: H2.toISOString(), organizationId: ORG_A });
    expect(a1).toEqual({
      ...orgAHour1,
      completedRequests: 5,
      successRate: 62.5,
      avgDurationSeconds: 180,
      p95DurationSeconds: 288, // 240 + 0.8 × 60
    });
    const [b0] = await buckets(adminToken, { from: H0.toISOString(), to: H1.toISOString(), organizationId: ORG_B });
    expect(b0).toMatchObject({ hour: H0.toISOString(), totalRequests: 1, completedRequests: 1, successRate: 100, avgDurationSeconds: 90, errorBreakdown: {} });
  });

  test('a failure retried away leaves the breakdown', async () => {
    const [failed] = await db()
      .select({ id: contentRequests.id })
      .from(contentRequests)
      .where(sql`${contentRequests.organizationId} = ${ORG_A} and ${contentRequests.status} = 'failed' and ${contentRequests.createdAt} >= ${H2.toISOString()}::timestamptz`);
    await db().update(contentRequests).set({ status: 'pending' }).where(inArray(contentRequests.id, [failed!.id]));
    await recomputeRequestMetrics(db(), { from: H2, to: new Date() });
    const [a2] = await buckets(adminToken, { from: H2.toISOString(), to: END.toISOString(), organizationId: ORG_A });
    expect(a2).toEqual({ ...orgAHour2, failedRequests: 0, failureRate: 0, errorBreakdown: {} });
  });
});

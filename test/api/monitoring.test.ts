/**
 * What operators watch, through real HTTP: the pipeline's stages, requests in
 * flight (scoped to the viewer, overdue ones first) and the hourly metrics the
 * rollup writes into request_metrics.
 */
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestMetrics, requestStages } from '../../src/db/tables.js';
import { rollupRequestMetrics } from '../../src/services/monitoring.js';
import { dataOf, onlyError, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
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

describe('pipelineStages', () => {
  const QUERY = `{ pipelineStages { name displayName order weight requestStatus expectedDurationSeconds description } }`;

  test('the five stages in order, weights summing to 100, with expected durations', async () => {
    const stages = dataOf(await app.graphql(QUERY, { token: adminToken })).pipelineStages;
    expect(stages.map((s: { name: string }) => s.name)).toEqual([...STAGES]);
    expect(stages.map((s: { order: number }) => s.order)).toEqual([1, 2, 3, 4, 5]);
    expect(stages.map((s: { weight: number }) => s.weight)).toEqual([5, 15, 25, 45, 10]);
    expect(stages.reduce((sum: number, s: { weight: number }) => sum + s.weight, 0)).toBe(100);
    expect(stages.map((s: { requestStatus: string }) => s.requestStatus)).toEqual([
      'VALIDATING',
      'RETRIEVING',
      'GENERATING_SCRIPT',
      'GENERATING_VIDEO',
      'PROCESSING_VIDEO',
    ]);
    expect(stages.map((s: { expectedDurationSeconds: number }) => s.expectedDurationSeconds)).toEqual([30, 120, 300, 900, 300]);
    for (const stage of stages) {
      expect(stage.displayName).toEqual(expect.any(String));
      expect(stage.displayName.length).toBeGreaterThan(0);
    }
    expect(stages[0].displayName).toBe('Validating request');
  });

  test('every signed-in role reads them; without a token, UNAUTHENTICATED', async () => {
    const student = await app.token({ sub: 'mon-stage-reader', role: 'student' });
    expect(dataOf(await app.graphql(QUERY, { token: student })).pipelineStages).toHaveLength(5);
    expect(onlyError(await app.graphql(QUERY)).extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('activeRequests', () => {
  const QUERY = `query ($overdueOnly: Boolean, $first: Int) {
    activeRequests(overdueOnly: $overdueOnly, first: $first) {
      id correlationId studentId studentName organizationId organizationName topic status currentStage
      currentStageDisplayName progressPercentage stageStatus stageStartedAt stageExpectedDurationSeconds
      secondsSinceCreated secondsInStage isOverdue
    }
  }`;
  type Active = { id: string; status: string; isOverdue: boolean; secondsInStage: number | null; [key: string]: unknown };

  const ids: Record<string, string> = {};
  const tokens: Record<string, string> = {};

  const report = async (requestId: string, stage: string, status: string, extra: Record<string, unknown> = {}) =>
    dataOf(
      await app.graphql(`mutation ($input: ReportStageInput!) { reportStage(input: $input) { status } }`, {
        token: workerToken,
        variables: { input: { requestId, stage, status, ...extra } },
      }),
    );
  const active = async (token: string, variables: Record<string, unknown> = {}) =>
    dataOf(await app.graphql(QUERY, { token, variables })).activeRequests as Active[];
  const idsOf = (list: Active[]) => list.map((r) => r.id).sort();
  const named = (...names: string[]) => names.map((name) => ids[name]!).sort();

  beforeAll(async () => {
    await insertOrganization(db(), { organizationId: 'act-org-a', name: 'Active School A' });
    await insertOrganization(db(), { organizationId: 'act-org-b', name: 'Active School B' });
    const students = {
      s1: await insertUser(db(), { userId: 'act-student-1', name: 'Ada', role: 'student', organizationId: 'act-org-a' }),
      s2: await insertUser(db(), { userId: 'act-student-2', name: 'Grace', role: 'student', organizationId: 'act-org-a' }),
      s3: await insertUser(db(), { userId: 'act-student-3', name: 'Alan', role: 'student', organizationId: 'act-org-b' }),
    };
    const create = async (name: string, student: keyof typeof students) => {
      const { userId, organizationId } = students[student];
      ids[name] = (await insertRequest(db(), { studentId: userId, organizationId, correlationId: `act-${name}` })).id;
    };
    await create('pending', 's1');
    await create('validating', 's1');
    await create('retrieving', 's2');
    await create('orgB', 's3');
    await create('completed', 's1');
    await create('failed', 's2');
    await create('cancelled', 's3');

    await report(ids.validating!, 'validation', 'IN_PROGRESS', { progress: 50 });
    await report(ids.retrieving!, 'validation', 'IN_PROGRESS');
    await report(ids.retrieving!, 'validation', 'COMPLETED');
    await report(ids.retrieving!, 'retrieval', 'IN_PROGRESS');
    await report(ids.orgB!, 'validation', 'IN_PROGRESS');
    for (const stage of STAGES) {
      await report(ids.completed!, stage, 'IN_PROGRESS');
      await report(ids.completed!, stage, 'COMPLETED');
    }
    await report(ids.failed!, 'validation', 'IN_PROGRESS');
    await report(ids.failed!, 'validation', 'FAILED', { errorMessage: 'unanswerable' });
    await db().update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, ids.cancelled!));

    tokens.s1 = await app.token({ sub: 'act-student-1', role: 'student', organization_id: 'act-org-a' });
    tokens.s3 = await app.token({ sub: 'act-student-3', role: 'student', organization_id: 'act-org-b' });
    tokens.orgA = await app.token({ sub: 'act-org-admin-a', role: 'org_admin', organization_id: 'act-org-a' });
    tokens.orgB = await app.token({ sub: 'act-org-admin-b', role: 'org_admin', organization_id: 'act-org-b' });
    tokens.noOrgAdmin = await app.token({ sub: 'act-org-admin-none', role: 'org_admin' });
  });

  test('only requests in flight, with where they stand', async () => {
    const list = await active(adminToken);
    expect(idsOf(list)).toEqual(named('pending', 'validating', 'retrieving', 'orgB'));
    const byId = new Map(list.map((r) => [r.id, r]));

    expect(byId.get(ids.pending!)).toMatchObject({
      status: 'PENDING',
      currentStage: null,
      stageStatus: null,
      stageStartedAt: null,
      secondsInStage: null,
      isOverdue: false,
      studentName: 'Ada',
      organizationName: 'Active School A',
      progressPercentage: 0,
    });
    expect(byId.get(ids.validating!)).toMatchObject({
      status: 'VALIDATING',
      currentStage: 'validation',
      currentStageDisplayName: 'Validating request',
      stageStatus: 'IN_PROGRESS',
      stageExpectedDurationSeconds: 30,
      progressPercentage: 2, // half of validation's 5
      isOverdue: false,
    });
    expect(byId.get(ids.retrieving!)).toMatchObject({ status: 'RETRIEVING', currentStage: 'retrieval', progressPercentage: 5, studentId: 'act-student-2' });
    for (const request of list) {
      expect(request.secondsSinceCreated).toBeGreaterThanOrEqual(0);
      expect(request.secondsSinceCreated).toBeLessThan(120);
    }
    // Oldest first when nothing is overdue.
    expect(list.map((r) => r.id)).toEqual([ids.pending, ids.validating, ids.retrieving, ids.orgB]);
  });

  test('scoped like every read: a student their own, an org admin their organization, a worker all', async () => {
    expect(idsOf(await active(tokens.s1!))).toEqual(named('pending', 'validating'));
    expect(idsOf(await active(tokens.s3!))).toEqual(named('orgB'));
    expect(idsOf(await active(tokens.orgA!))).toEqual(named('pending', 'validating', 'retrieving'));
    expect(idsOf(await active(tokens.orgB!))).toEqual(named('orgB'));
    expect(await active(tokens.noOrgAdmin!)).toEqual([]);
    expect(idsOf(await active(workerToken))).toEqual(named('pending', 'validating', 'retrieving', 'orgB'));
  });

  test('first limits the list; out of range is BAD_USER_INPUT', async () => {
    expect(await active(adminToken, { first: 2 })).toHaveLength(2);
    for (const first of [0, 1001]) {
      const error = onlyError(await app.graphql(QUERY, { token: adminToken, variables: { first } }));
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/^first: /);
    }
    expect(onlyError(await app.graphql(QUERY)).extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('overdueOnly: a stage past its expected duration, first in the full list too', async () => {
    expect(await active(adminToken, { overdueOnly: true })).toEqual([]);

    // Retrieval is expected to take 120 s; this one started an hour ago.
    await db()
      .update(requestStages)
      .set({ startedAt: sql`now() - interval '1 hour'` })
      .where(sql`${requestStages.requestId} = ${ids.retrieving!} and ${requestStages.stageName} = 'retrieval'`);

    const overdue = await active(adminToken, { overdueOnly: true });
    expect(overdue.map((r) => r.id)).toEqual([ids.retrieving]);
    expect(overdue[0]).toMatchObject({ isOverdue: true, stageStatus: 'IN_PROGRESS', stageExpectedDurationSeconds: 120 });
    expect(overdue[0]!.secondsInStage).toBeGreaterThanOrEqual(3600);
    expect(overdue[0]!.secondsInStage).toBeLessThan(3700);

    const all = await active(adminToken);
    expect(all.map((r) => r.id)).toEqual([ids.retrieving, ids.pending, ids.validating, ids.orgB]);
    expect(all.filter((r) => r.isOverdue).map((r) => r.id)).toEqual([ids.retrieving]);

    // Still scoped: it is student 2's, in organization A.
    expect(await active(tokens.s1!, { overdueOnly: true })).toEqual([]);
    expect((await active(tokens.orgA!, { overdueOnly: true })).map((r) => r.id)).toEqual([ids.retrieving]);
    expect(await active(tokens.orgB!, { overdueOnly: true })).toEqual([]);
  });

  test('a request leaves the list when it finishes', async () => {
    await report(ids.orgB!, 'validation', 'FAILED');
    expect(idsOf(await active(adminToken))).toEqual(named('pending', 'validating', 'retrieving'));
    expect(await active(tokens.orgB!)).toEqual([]);
  });
});

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
    await rollupRequestMetrics(db(), at(H1, 30));
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
    await rollupRequestMetrics(db(), at(H1, 30));
    await rollupRequestMetrics(db(), at(H1, 30));
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
    await rollupRequestMetrics(db(), H0);
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
    await rollupRequestMetrics(db(), H2);
    const [a2] = await buckets(adminToken, { from: H2.toISOString(), to: END.toISOString(), organizationId: ORG_A });
    expect(a2).toEqual({ ...orgAHour2, failedRequests: 0, failureRate: 0, errorBreakdown: {} });
  });
});

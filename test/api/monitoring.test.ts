/**
 * What operators watch, through real HTTP: the pipeline's stages and the
 * requests in flight (scoped to the viewer, overdue ones first). The hourly
 * metrics are in request-metrics.test.ts.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestStages } from '../../src/db/tables.js';
import { dataOf, onlyError, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';
import { driveToCompletion, reportStage, type Client, type StageReportStatus } from '../helpers/requests.js';

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

  const worker = (): Client => ({ url: app.url, token: workerToken });
  const report = (requestId: string, stage: string, status: StageReportStatus, progress?: number, extra = {}) =>
    reportStage(worker(), requestId, stage, status, progress, extra);
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

    await report(ids.validating!, 'validation', 'IN_PROGRESS', 50);
    await report(ids.retrieving!, 'validation', 'IN_PROGRESS');
    await report(ids.retrieving!, 'validation', 'COMPLETED');
    await report(ids.retrieving!, 'retrieval', 'IN_PROGRESS');
    await report(ids.orgB!, 'validation', 'IN_PROGRESS');
    await driveToCompletion(worker(), ids.completed!);
    await report(ids.failed!, 'validation', 'IN_PROGRESS');
    await report(ids.failed!, 'validation', 'FAILED', undefined, { errorMessage: 'unanswerable' });
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


/**
 * No N+1: one GraphQL query for a page of requests with their stages, event
 * log, student and organization costs a small, constant number of SQL
 * statements, whatever the page size. Counted at the driver (every statement
 * Drizzle sends), through real HTTP.
 */
import { inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestStages } from '../../src/db/tables.js';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';

const statements: string[] = [];
let app: TestApp;
let adminToken: string;
let orgAdminToken: string;

const ORGS = ['batch-org-a', 'batch-org-b'];
const STUDENTS = [
  { userId: 'batch-student-1', organizationId: ORGS[0]! },
  { userId: 'batch-student-2', organizationId: ORGS[0]! },
  { userId: 'batch-student-3', organizationId: ORGS[1]! },
];

beforeAll(async () => {
  // No stall check: its statements would land in the counts below.
  // No periodic job: a job's lease tick landing between two measured requests was counted as theirs.
  app = await startTestApp({
    onQuery: (query) => statements.push(query),
    env: { STALL_CHECK_INTERVAL_SECONDS: '0', METRICS_ROLLUP_INTERVAL_SECONDS: '0', STAGE_ESTIMATES_REFRESH_SECONDS: '0', RETENTION_DAYS: '0' },
  });
  const db = app.testDatabase.database.db;
  for (const organizationId of ORGS) await insertOrganization(db, { organizationId, name: organizationId });
  for (const student of STUDENTS) await insertUser(db, { ...student, role: 'student' });

  // 30 requests, each with two stages (one done, one running) and so a few events.
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const student = STUDENTS[i % STUDENTS.length]!;
    ids.push((await insertRequest(db, { studentId: student.userId, organizationId: student.organizationId, correlationId: `batch-${i}` })).id);
  }
  await db.insert(requestStages).values(ids.map((requestId) => ({ requestId, stageName: 'validation', status: 'in_progress' as const })));
  await db.update(requestStages).set({ status: 'completed' }).where(inArray(requestStages.requestId, ids));
  await db.insert(requestStages).values(ids.map((requestId) => ({ requestId, stageName: 'retrieval', status: 'in_progress' as const, progressPercentage: 40 })));
  const moved = await db.select({ status: contentRequests.status }).from(contentRequests).where(inArray(contentRequests.id, ids));
  expect(moved.every((row) => row.status === 'retrieving')).toBe(true);

  adminToken = await app.token({ sub: 'batch-admin', role: 'admin' });
  orgAdminToken = await app.token({ sub: 'batch-org-admin', role: 'org_admin', organization_id: ORGS[0] });
});
afterAll(() => app?.close());

const PAGE = `query ($first: Int!, $after: String) {
  contentRequests(first: $first, after: $after) {
    edges {
      node {
        id topic status progressPercentage
        stages { stage status progressPercentage startedAt }
        events(first: 10) { edges { cursor node { id sequence eventType newStatus stage } } pageInfo { hasNextPage endCursor } }
        student { id name role }
        organization { id name }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;

// /metrics' stage-duration histogram reads the stages completed above, up to 2 s later: not the page's statement.
const isMetricsRead = (statement: string) => statement.startsWith('select "stage_name", "duration_seconds" from "request_stages"');

/** Runs the page query and returns the statements it cost, and the page. */
async function measure(token: string, variables: Record<string, unknown>) {
  statements.length = 0;
  const response = await app.graphql(PAGE, { token, variables });
  const sent = statements.filter((statement) => !isMetricsRead(statement));
  return { sent, connection: dataOf(response).contentRequests };
}

const describeStatements = (sent: string[]) => sent.map((s, i) => `${i + 1}. ${s.slice(0, 160)}`).join('\n');

describe('a page of requests with stages, events, student and organization', () => {
  test('costs the same few statements for 5 requests as for 20', async () => {
    // Warm-up: the first call with a token provisions its user; later calls do not.
    await measure(adminToken, { first: 1 });

    const five = await measure(adminToken, { first: 5 });
    const twenty = await measure(adminToken, { first: 20 });
    expect(five.connection.edges).toHaveLength(5);
    expect(twenty.connection.edges).toHaveLength(20);

    // Everything was really loaded, for every request.
    for (const { node } of twenty.connection.edges) {
      expect(node.stages.map((s: { stage: string }) => s.stage)).toEqual(['validation', 'retrieval']);
      expect(node.events.edges.length).toBeGreaterThanOrEqual(3);
      expect(node.events.edges[0].node.eventType).toBe('CREATED');
      expect(node.student.id).toMatch(/^batch-student-/);
      expect(node.organization.id).toMatch(/^batch-org-/);
    }
    const students = new Set(twenty.connection.edges.map((e: { node: { student: { id: string } } }) => e.node.student.id));
    expect(students.size).toBe(3);

    expect(twenty.sent.length, describeStatements(twenty.sent)).toBe(five.sent.length);
    // The page, then one each for stages, events, users and organizations.
    expect(twenty.sent.length, describeStatements(twenty.sent)).toBeLessThanOrEqual(6);
    for (const table of ['request_stages', 'request_events', 'users', 'organizations']) {
      const touching = twenty.sent.filter((s) => new RegExp(`from "${table}"`).test(s));
      expect(touching.length, `statements reading ${table}:\n${describeStatements(twenty.sent)}`).toBe(1);
    }
  });

  test('the ETA adds one statement for the whole page, the stages it needs, and never reads the history', async () => {
    const withEta = `query ($first: Int!) {
      contentRequests(first: $first) { edges { node { id status estimatedCompletionAt estimatedSecondsRemaining } } }
    }`;
    const run = async (first: number) => {
      statements.length = 0;
      const { contentRequests: page } = dataOf(await app.graphql(withEta, { token: adminToken, variables: { first } }));
      return { sent: statements.filter((statement) => !isMetricsRead(statement)), edges: page.edges as { node: { estimatedSecondsRemaining: number | null } }[] };
    };
    // Warm-up: the pipeline and the estimates table are read once and kept for a while.
    await run(1);
    const five = await run(5);
    const twenty = await run(20);
    expect(twenty.edges).toHaveLength(20);
    for (const { node } of twenty.edges) expect(node.estimatedSecondsRemaining).toBeGreaterThan(0);
    expect(twenty.sent.length, describeStatements(twenty.sent)).toBe(five.sent.length);
    const stageReads = twenty.sent.filter((statement) => /from "request_stages"/.test(statement));
    expect(stageReads, describeStatements(twenty.sent)).toHaveLength(1);
    expect(twenty.sent.filter((statement) => /stage_duration_estimates|percentile_cont/.test(statement))).toEqual([]);
  });

  test('the next page costs what the first one costs', async () => {
    await measure(adminToken, { first: 1 });
    const first = await measure(adminToken, { first: 20 });
    const second = await measure(adminToken, { first: 20, after: first.connection.pageInfo.endCursor });
    expect(second.connection.edges).toHaveLength(10);
    expect(second.sent.length).toBe(first.sent.length);
  });

  test('the same holds within an org admin’s scope, provisioning counted once', async () => {
    const warm = await measure(orgAdminToken, { first: 1 });
    const five = await measure(orgAdminToken, { first: 5 });
    const twenty = await measure(orgAdminToken, { first: 20 });
    expect(twenty.connection.edges).toHaveLength(20);
    expect(twenty.connection.edges.every((e: { node: { organization: { id: string } } }) => e.node.organization.id === ORGS[0])).toBe(true);
    expect(twenty.sent.length).toBe(five.sent.length);
    // The first call with a new token also stores its user (and organization): at most two more.
    expect(warm.sent.length - five.sent.length).toBeGreaterThanOrEqual(1);
    expect(warm.sent.length - five.sent.length).toBeLessThanOrEqual(2);
  });
});

describe('one request with a page of its events', () => {
  const EVENT_FIELDS = 'id requestId sequence eventType oldStatus newStatus stage progressPercentage severity message metadata createdAt';
  const direct = `query ($id: ID!, $after: String) {
    contentRequest(id: $id) { id topic status events(first: 2, after: $after) { edges { cursor node { ${EVENT_FIELDS} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }
  }`;
  // The same selection behind a fragment: read as before, the request and then its events.
  const throughFragment = `query ($id: ID!, $after: String) {
    contentRequest(id: $id) { id topic status ... on ContentRequest { events(first: 2, after: $after) { edges { cursor node { ${EVENT_FIELDS} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }
  }`;
  // What a client reads of an answer (not its headers: each has its own request id).
  const run = async (query: string, token: string, variables: Record<string, unknown>) => {
    statements.length = 0;
    const { status, data, errors } = await app.graphql(query, { token, variables });
    const response = { status, data, errors: errors?.map(({ message, path, extensions }) => ({ message, path, code: extensions?.code })) };
    return { response, sent: statements.filter((statement) => !isMetricsRead(statement)) };
  };
  const someRequest = async (organizationId: string) => {
    const [row] = await app.testDatabase.database.db
      .select({ id: contentRequests.id })
      .from(contentRequests)
      .where(inArray(contentRequests.organizationId, [organizationId]))
      .limit(1);
    return row!.id;
  };

  test('is one statement, and answers what the request and then its events answer', async () => {
    const id = await someRequest(ORGS[0]!);
    await run(direct, adminToken, { id }); // warm-up: provisioning
    for (const after of [null, '1', '2', '100']) {
      const one = await run(direct, adminToken, { id, after });
      const two = await run(throughFragment, adminToken, { id, after });
      expect(one.sent, describeStatements(one.sent)).toHaveLength(1);
      expect(two.sent, describeStatements(two.sent)).toHaveLength(2);
      expect(one.response).toEqual(two.response);
    }
    const first = dataOf(await app.graphql(direct, { token: adminToken, variables: { id } })).contentRequest;
    expect(first.events.edges.map((edge: { node: { sequence: string } }) => String(edge.node.sequence))).toEqual(['1', '2']);
    expect(first.events.pageInfo.hasNextPage).toBe(true);
  });

  test('a request out of the viewer’s reach is NOT_FOUND, as before', async () => {
    const id = await someRequest(ORGS[1]!);
    const one = await run(direct, orgAdminToken, { id });
    const two = await run(throughFragment, orgAdminToken, { id });
    expect(one.response.errors?.[0]?.code).toBe('NOT_FOUND');
    expect(one.response).toEqual(two.response);
  });

  test('arguments the events field refuses are refused as before', async () => {
    const id = await someRequest(ORGS[0]!);
    const tooMany = `query ($id: ID!) { contentRequest(id: $id) { id events(first: 501) { edges { node { id } } } } }`;
    const backwards = `query ($id: ID!) { contentRequest(id: $id) { id events(last: 2) { edges { node { id } } } } }`;
    for (const query of [tooMany, backwards]) {
      const response = await app.graphql(query, { token: adminToken, variables: { id } });
      expect(response.errors?.[0]?.extensions?.code, JSON.stringify(response)).toBe('BAD_USER_INPUT');
      expect(response.data).toEqual({ contentRequest: null });
    }
  });
});

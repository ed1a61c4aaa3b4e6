/**
 * Malformed input through real HTTP: every case is answered with one clear
 * GraphQL error carrying a stable `extensions.code` and a message that says
 * what is wrong (and the limit, where there is one); never a 500 or a stack
 * trace; and the whole batch leaves the database exactly as it was.
 */
import { asc, count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, organizations, requestEvents, requestStages, users } from '../../src/db/tables.js';
import { dataOf, startTestApp, type GraphQLResponse, type TestApp } from '../helpers/app.js';
import { reportStage } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<'student' | 'worker' | 'admin', string> = { student: '', worker: '', admin: '' };
let requestId: string;
let before: Awaited<ReturnType<typeof snapshot>>;

async function snapshot() {
  const db = app.testDatabase.database.db;
  const rows = async (table: typeof contentRequests | typeof requestStages | typeof requestEvents | typeof users | typeof organizations) =>
    (await db.select({ n: count() }).from(table))[0]!.n;
  return {
    counts: {
      content_requests: await rows(contentRequests),
      request_stages: await rows(requestStages),
      request_events: await rows(requestEvents),
      users: await rows(users),
      organizations: await rows(organizations),
    },
    // Counts miss an update in place: the rows themselves must not move either.
    requests: await db.select().from(contentRequests).orderBy(asc(contentRequests.id)),
    stages: await db.select().from(requestStages).orderBy(asc(requestStages.id)),
  };
}

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id } } }`;
const REPORT = `mutation ($input: ReportStageInput!) { reportStage(input: $input) { id status progressPercentage } }`;
const LIST = `query ($first: Int, $after: String, $filter: ContentRequestFilter) {
  contentRequests(first: $first, after: $after, filter: $filter) { edges { cursor node { id } } }
}`;
const METRICS = `query ($from: DateTime, $to: DateTime, $organizationId: ID) {
  requestMetrics(from: $from, to: $to, organizationId: $organizationId) { hour totalRequests }
}`;
const EVENTS = `query ($id: ID!, $first: Int, $after: String) {
  contentRequest(id: $id) { events(first: $first, after: $after) { edges { cursor } } }
}`;

const A_UUID = '6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f';
const submission = (overrides: Record<string, unknown> = {}) => ({
  input: { correlationId: 'validation-new-1', topic: 'Volcanoes', studentQuery: 'Why do volcanoes erupt?', gradeLevel: '6', ...overrides },
});
const report = (overrides: Record<string, unknown> = {}) => ({
  input: { requestId: () => requestId, stage: 'retrieval', status: 'IN_PROGRESS', ...overrides },
});
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

type Case = {
  name: string;
  query: string;
  /** Functions are resolved when the case runs (the seeded request's id is known only then). */
  variables?: Record<string, unknown>;
  as?: keyof typeof tokens;
  code: string;
  message: string | RegExp;
};

const cases: Case[] = [
  // ---- identifiers
  { name: 'contentRequest with a non-UUID id', query: `{ contentRequest(id: "not-a-uuid") { id } }`, code: 'BAD_USER_INPUT', message: 'must be a UUID' },
  { name: 'contentRequest with an empty id', query: `{ contentRequest(id: "") { id } }`, code: 'BAD_USER_INPUT', message: 'must be a UUID' },
  { name: 'contentRequest with a UUID and a trailing character', query: `{ contentRequest(id: "${A_UUID}x") { id } }`, code: 'BAD_USER_INPUT', message: 'must be a UUID' },
  {
    name: 'cancelContentRequest with SQL in the id',
    query: `mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }`,
    variables: { id: "' or 1=1; drop table content_requests; --" },
    code: 'BAD_USER_INPUT',
    message: 'must be a UUID',
  },
  { name: 'retryContentRequest with a number-like id', query: `mutation { retryContentRequest(id: 12345) { id } }`, code: 'BAD_USER_INPUT', message: 'must be a UUID' },
  { name: 'reportStage with a non-UUID requestId', query: REPORT, variables: report({ requestId: 'request-1' }), as: 'worker', code: 'BAD_USER_INPUT', message: 'requestId: must be a UUID' },

  // ---- the correlation id: empty, blank, too long
  { name: 'contentRequestByCorrelationId with an empty key', query: `{ contentRequestByCorrelationId(correlationId: "") { id } }`, code: 'BAD_USER_INPUT', message: 'must not be empty' },
  { name: 'contentRequestByCorrelationId with a 256-character key', query: `query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id } }`, variables: { c: 'k'.repeat(256) }, code: 'BAD_USER_INPUT', message: 'at most 255 characters' },
  { name: 'submit with an empty correlationId', query: SUBMIT, variables: submission({ correlationId: '' }), code: 'BAD_USER_INPUT', message: 'correlationId: must not be empty' },
  { name: 'submit with a whitespace correlationId', query: SUBMIT, variables: submission({ correlationId: ' \t\n ' }), code: 'BAD_USER_INPUT', message: 'correlationId: must not be empty' },
  { name: 'submit with a 256-character correlationId', query: SUBMIT, variables: submission({ correlationId: 'c'.repeat(256) }), code: 'BAD_USER_INPUT', message: 'correlationId: must be at most 255 characters' },

  // ---- the other submitted texts
  { name: 'submit with an empty topic', query: SUBMIT, variables: submission({ topic: '' }), code: 'BAD_USER_INPUT', message: 'topic: must not be empty' },
  { name: 'submit with a 501-character topic', query: SUBMIT, variables: submission({ topic: 't'.repeat(501) }), code: 'BAD_USER_INPUT', message: 'topic: must be at most 500 characters' },
  { name: 'submit with a whitespace studentQuery', query: SUBMIT, variables: submission({ studentQuery: '     ' }), code: 'BAD_USER_INPUT', message: 'studentQuery: must not be empty' },
  { name: 'submit with a 10,001-character studentQuery', query: SUBMIT, variables: submission({ studentQuery: 'q'.repeat(10_001) }), code: 'BAD_USER_INPUT', message: 'studentQuery: must be at most 10000 characters' },
  { name: 'submit with a 51-character gradeLevel', query: SUBMIT, variables: submission({ gradeLevel: 'g'.repeat(51) }), code: 'BAD_USER_INPUT', message: 'gradeLevel: must be at most 50 characters' },
  { name: 'submit with a 101-character studentId', query: SUBMIT, variables: submission({ studentId: 's'.repeat(101) }), as: 'admin', code: 'BAD_USER_INPUT', message: 'studentId: must be at most 100 characters' },
  { name: 'submit for a student who does not exist', query: SUBMIT, variables: submission({ studentId: 'nobody-by-that-name' }), as: 'admin', code: 'BAD_USER_INPUT', message: /^studentId: is not a student you can submit for$/ },

  // ---- metadata
  { name: 'submit with array metadata', query: SUBMIT, variables: submission({ metadata: [1, 2, 3] }), code: 'BAD_USER_INPUT', message: 'metadata: must be a JSON object' },
  { name: 'submit with string metadata', query: SUBMIT, variables: submission({ metadata: 'source=web' }), code: 'BAD_USER_INPUT', message: 'metadata: must be a JSON object' },
  { name: 'submit with metadata over 16 KB', query: SUBMIT, variables: submission({ metadata: { blob: 'm'.repeat(16 * 1024) } }), code: 'BAD_USER_INPUT', message: 'metadata: must be at most 16384 bytes of JSON' },
  { name: 'reportStage with number metadata', query: REPORT, variables: report({ metadata: 42 }), as: 'worker', code: 'BAD_USER_INPUT', message: 'metadata: must be a JSON object' },
  { name: 'reportStage with metadata over 16 KB', query: REPORT, variables: report({ metadata: { trace: 'x'.repeat(17_000) } }), as: 'worker', code: 'BAD_USER_INPUT', message: 'metadata: must be at most 16384 bytes of JSON' },
  {
    name: 'a variable inside a JSON literal',
    query: `mutation ($v: String) { submitContentRequest(input: { correlationId: "validation-json-1", topic: "x", studentQuery: "y", metadata: { source: $v } }) { created } }`,
    variables: { v: 'web' },
    code: 'BAD_USER_INPUT',
    message: 'variables are not allowed inside a JSON literal',
  },

  // ---- the shape of the input itself (refused while coercing variables, before any resolver runs)
  { name: 'submit without the required topic', query: SUBMIT, variables: { input: { correlationId: 'validation-shape-1', studentQuery: 'y' } }, code: 'BAD_USER_INPUT', message: 'Field "topic" of required type "String!" was not provided' },
  { name: 'submit with a number for the correlationId', query: SUBMIT, variables: submission({ correlationId: 5 }), code: 'BAD_USER_INPUT', message: 'String cannot represent a non string value: 5' },
  { name: 'submit with a field the input does not have', query: SUBMIT, variables: submission({ priority: 'high' }), code: 'BAD_USER_INPUT', message: 'Field "priority" is not defined by type "SubmitContentRequestInput"' },

  // ---- the worker protocol
  { name: 'reportStage with an unknown stage', query: REPORT, variables: report({ stage: 'rendering' }), as: 'worker', code: 'BAD_USER_INPUT', message: /^stage: is not a pipeline stage; the stages are validation, retrieval, /i },
  { name: 'reportStage with an empty stage', query: REPORT, variables: report({ stage: '  ' }), as: 'worker', code: 'BAD_USER_INPUT', message: 'stage: must not be empty' },
  { name: 'reportStage with progress -1', query: REPORT, variables: report({ progress: -1 }), as: 'worker', code: 'BAD_USER_INPUT', message: 'progress: must be between 0 and 100' },
  { name: 'reportStage with progress 101', query: REPORT, variables: report({ progress: 101 }), as: 'worker', code: 'BAD_USER_INPUT', message: 'progress: must be between 0 and 100' },
  { name: 'reportStage with progress 50.5 in a variable', query: REPORT, variables: report({ progress: 50.5 }), as: 'worker', code: 'BAD_USER_INPUT', message: 'Int cannot represent non-integer value: 50.5' },
  {
    name: 'reportStage with progress 50.5 in the document',
    query: `mutation { reportStage(input: { requestId: "${A_UUID}", stage: "retrieval", status: IN_PROGRESS, progress: 50.5 }) { id } }`,
    as: 'worker',
    code: 'GRAPHQL_VALIDATION_FAILED',
    message: 'Int cannot represent non-integer value: 50.5',
  },
  { name: 'reportStage with progress beyond 32 bits', query: REPORT, variables: report({ progress: 2 ** 31 }), as: 'worker', code: 'BAD_USER_INPUT', message: 'Int cannot represent non 32-bit signed integer value' },
  { name: 'reportStage with a 2,001-character errorMessage', query: REPORT, variables: report({ status: 'FAILED', errorMessage: 'e'.repeat(2_001) }), as: 'worker', code: 'BAD_USER_INPUT', message: 'errorMessage: must be at most 2000 characters' },
  { name: 'reportStage with an unknown status in a variable', query: REPORT, variables: report({ status: 'DONE' }), as: 'worker', code: 'BAD_USER_INPUT', message: 'Value "DONE" does not exist in "StageStatus" enum' },
  {
    name: 'reportStage with an unknown status in the document',
    query: `mutation { reportStage(input: { requestId: "${A_UUID}", stage: "retrieval", status: DONE }) { id } }`,
    as: 'worker',
    code: 'GRAPHQL_VALIDATION_FAILED',
    message: 'Value "DONE" does not exist in "StageStatus" enum',
  },
  { name: 'reportStage with the status in lower case', query: REPORT, variables: report({ status: 'in_progress' }), as: 'worker', code: 'BAD_USER_INPUT', message: 'Value "in_progress" does not exist in "StageStatus" enum' },

  // ---- paging
  { name: 'contentRequests first: 0', query: LIST, variables: { first: 0 }, code: 'BAD_USER_INPUT', message: 'first: must be between 1 and 100' },
  { name: 'contentRequests first: 101', query: LIST, variables: { first: 101 }, code: 'BAD_USER_INPUT', message: 'first: must be between 1 and 100' },
  { name: 'contentRequests first: -5', query: LIST, variables: { first: -5 }, code: 'BAD_USER_INPUT', message: 'first: must be between 1 and 100' },
  { name: 'contentRequests after a made-up cursor', query: LIST, variables: { after: 'not-a-cursor' }, code: 'BAD_USER_INPUT', message: 'after: is not a cursor this API issued' },
  { name: 'contentRequests after a forged cursor with a bad UUID', query: LIST, variables: { after: cursorOf(['2026-01-01T00:00:00.000000Z', "1' or '1'='1"]) }, code: 'BAD_USER_INPUT', message: 'after: is not a cursor this API issued' },
  { name: 'contentRequests paged backwards', query: `{ contentRequests(last: 5) { edges { cursor } } }`, code: 'BAD_USER_INPUT', message: 'forward only' },
  { name: 'events first: 0', query: EVENTS, variables: { id: () => requestId, first: 0 }, code: 'BAD_USER_INPUT', message: 'first: must be between 1 and 500' },
  { name: 'events after a cursor that is not a sequence', query: EVENTS, variables: { id: () => requestId, after: 'abc' }, code: 'BAD_USER_INPUT', message: 'after: must be a sequence number' },
  { name: 'activeRequests first: 1001', query: `{ activeRequests(first: 1001) { id } }`, as: 'admin', code: 'BAD_USER_INPUT', message: 'first: must be between 1 and 1000' },

  // ---- filters and time ranges
  { name: 'a filter status that does not exist', query: LIST, variables: { filter: { status: ['DONE'] } }, code: 'BAD_USER_INPUT', message: 'Value "DONE" does not exist in "ContentRequestStatus" enum' },
  { name: 'a filter status that does not exist, in the document', query: `{ contentRequests(filter: { status: [DONE] }) { edges { cursor } } }`, code: 'GRAPHQL_VALIDATION_FAILED', message: 'Value "DONE" does not exist in "ContentRequestStatus" enum' },
  { name: 'a filter errorStage of 101 characters', query: LIST, variables: { filter: { errorStage: 'e'.repeat(101) } }, code: 'BAD_USER_INPUT', message: 'errorStage: must be at most 100 characters' },
  { name: 'a createdAfter that is not a date', query: LIST, variables: { filter: { createdAfter: 'yesterday' } }, code: 'BAD_USER_INPUT', message: 'DateTime: expected an ISO 8601 string with a time zone' },
  { name: 'a createdBefore without a time zone', query: LIST, variables: { filter: { createdBefore: '2026-01-01T00:00:00' } }, code: 'BAD_USER_INPUT', message: 'DateTime: expected an ISO 8601 string with a time zone' },
  { name: 'an impossible calendar date', query: METRICS, variables: { from: '2026-02-30T25:61:00Z' }, as: 'admin', code: 'BAD_USER_INPUT', message: 'DateTime: expected an ISO 8601 string with a time zone' },
  { name: 'a DateTime literal that is not a date', query: `{ requestMetrics(from: "last tuesday") { hour } }`, as: 'admin', code: 'BAD_USER_INPUT', message: 'DateTime: expected an ISO 8601 string' },
  { name: 'requestMetrics with from after to', query: METRICS, variables: { from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' }, as: 'admin', code: 'BAD_USER_INPUT', message: 'from: must be before to' },
  { name: 'requestMetrics with from equal to to', query: METRICS, variables: { from: '2026-03-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }, as: 'admin', code: 'BAD_USER_INPUT', message: 'from: must be before to' },
  { name: 'requestMetrics over more than 93 days', query: METRICS, variables: { from: '2025-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, as: 'admin', code: 'BAD_USER_INPUT', message: 'the range may span at most 93 days' },
  { name: 'requestMetrics for a 101-character organization id', query: METRICS, variables: { organizationId: 'o'.repeat(101) }, as: 'admin', code: 'BAD_USER_INPUT', message: 'organizationId: must be at most 100 characters' },

  // ---- documents that are not GraphQL, or not this schema
  { name: 'a syntax error', query: `{ contentRequests(first: 5) { edges { cursor }`, code: 'GRAPHQL_PARSE_FAILED', message: 'Syntax Error' },
  { name: 'a field the schema does not have', query: `{ contentRequests { edges { node { id password } } } }`, code: 'GRAPHQL_VALIDATION_FAILED', message: 'Cannot query field "password" on type "ContentRequest"' },
  { name: 'a mutation argument of the wrong type', query: `mutation { cancelContentRequest(id: true) { id } }`, code: 'GRAPHQL_VALIDATION_FAILED', message: 'ID cannot represent a non-string and non-integer value: true' },
  { name: 'two operations and no operation name', query: `query A { viewer { id } } query B { viewer { id } }`, code: 'OPERATION_RESOLUTION_FAILURE', message: 'Could not determine what operation to execute' },
];

beforeAll(async () => {
  app = await startTestApp();
  tokens.student = await app.token({ sub: 'validation-student', role: 'student', organization_id: 'validation-org' });
  tokens.worker = await app.token({ sub: 'validation-worker', role: 'worker' });
  tokens.admin = await app.token({ sub: 'validation-admin', role: 'admin' });
  // Provision every caller first, so the batch itself has nothing legitimate to write.
  for (const token of Object.values(tokens)) dataOf(await app.graphql(`{ viewer { id } }`, { token }));

  // One real request, part way through the pipeline, for the cases that need an id.
  requestId = dataOf(
    await app.graphql(SUBMIT, { token: tokens.student, variables: submission({ correlationId: 'validation-seed-1' }) }),
  ).submitContentRequest.request.id;
  await reportStage({ url: app.url, token: tokens.worker }, requestId, 'validation', 'IN_PROGRESS');
  await reportStage({ url: app.url, token: tokens.worker }, requestId, 'validation', 'COMPLETED');
  before = await snapshot();
  expect(before.counts.content_requests).toBe(1);
  expect(before.counts.request_stages).toBe(1);
});
afterAll(() => app?.close());

const resolve = (value: unknown): unknown =>
  typeof value === 'function'
    ? value()
    : Array.isArray(value)
      ? value.map(resolve)
      : value && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]))
        : value;

function expectCleanError(response: GraphQLResponse, expected: Pick<Case, 'code' | 'message'>) {
  const body = JSON.stringify({ data: response.data, errors: response.errors });
  expect(response.status, body).toBeLessThan(500);
  expect([200, 400]).toContain(response.status);
  expect(response.errors, body).toHaveLength(1);
  const [error] = response.errors!;
  expect(error!.extensions?.code, body).toBe(expected.code);
  if (typeof expected.message === 'string') expect(error!.message).toContain(expected.message);
  else expect(error!.message).toMatch(expected.message);
  // Nothing of the server's insides: no stack, no source paths, no SQL.
  expect(body).not.toMatch(/stack|node_modules|\.ts:\d+|\bat \w+ \(|syntax error at or near|relation "/i);
  // A mutation or field that failed answers null, never half a result.
  for (const value of Object.values(response.data ?? {})) expect(value).toBeNull();
}

describe('malformed input', () => {
  test('there are at least 30 distinct cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(new Set(cases.map((c) => `${c.query}\n${JSON.stringify(c.variables)}`)).size).toBe(cases.length);
  });

  test.each(cases)('$name → $code', async (testCase) => {
    const response = await app.graphql(testCase.query, {
      token: tokens[testCase.as ?? 'student'],
      variables: resolve(testCase.variables ?? {}) as Record<string, unknown>,
    });
    expectCleanError(response, testCase);
  });

  test('a student reporting a stage is FORBIDDEN, before the input is even looked at', async () => {
    const response = await app.graphql(REPORT, { token: tokens.student, variables: resolve(report({ progress: 500 })) as Record<string, unknown> });
    expectCleanError(response, { code: 'FORBIDDEN', message: 'needs the worker or admin role' });
  });

  test('reusing a correlation id for a different request is a CONFLICT', async () => {
    const response = await app.graphql(SUBMIT, {
      token: tokens.student,
      variables: submission({ correlationId: 'validation-seed-1', topic: 'Something else entirely' }),
    });
    expectCleanError(response, { code: 'CONFLICT', message: /^correlationId: already used for a different request$/ });
  });

  test('nothing the batch sent changed the database', async () => {
    const after = await snapshot();
    expect(after.counts).toEqual(before.counts);
    expect(after.requests).toEqual(before.requests);
    expect(after.stages).toEqual(before.stages);
    // And nothing was logged as an unexpected error: every case was a foreseen one.
    expect(app.logs.filter((line) => line.level >= 50)).toEqual([]);
  });
});

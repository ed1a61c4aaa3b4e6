/**
 * Input that used to reach the database (or blow the stack) and come back as
 * INTERNAL_SERVER_ERROR: a NUL in any text, dates PostgreSQL cannot store,
 * JSON nested thousands deep. Each is BAD_USER_INPUT naming the field, and
 * nothing is logged as unexpected. And a body that is not JSON is refused
 * short, without echoing it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { subscribeSse, UPDATES } from '../helpers/live.js';
import { submitRequest } from '../helpers/requests.js';

let app: TestApp;
const tokens = { student: '', worker: '', admin: '' };
let requestId: string;

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id } } }`;
const REPORT = `mutation ($input: ReportStageInput!) { reportStage(input: $input) { id } }`;
const LIST = `query ($after: String, $filter: ContentRequestFilter) { contentRequests(after: $after, filter: $filter) { edges { cursor } } }`;
const METRICS = `query ($from: DateTime, $to: DateTime, $organizationId: ID) { requestMetrics(from: $from, to: $to, organizationId: $organizationId) { hour } }`;
const BY_CORRELATION = `query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id } }`;

const NUL = 'a\u0000b';
const submission = (overrides: Record<string, unknown>) => ({
  input: { correlationId: 'hostile-1', topic: 'Volcanoes', studentQuery: 'Why do volcanoes erupt?', ...overrides },
});
const report = (overrides: Record<string, unknown>) => ({
  input: { requestId: () => requestId, stage: 'retrieval', status: 'IN_PROGRESS', ...overrides },
});
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
// Arrays in an object: two bytes a level, so 4,000 levels stay under the 16 KB size limit.
const nested = (depth: number) => {
  let value: unknown = 1;
  for (let i = 1; i < depth; i++) value = [value];
  return { n: value };
};

type Case = { name: string; query: string; variables: Record<string, unknown>; as?: keyof typeof tokens; field: string };

const cases: Case[] = [
  // A NUL in every text input.
  { name: 'NUL in contentRequestByCorrelationId', query: BY_CORRELATION, variables: { c: NUL }, field: 'correlationId' },
  { name: 'NUL in submit correlationId', query: SUBMIT, variables: submission({ correlationId: NUL }), field: 'correlationId' },
  { name: 'NUL in submit topic', query: SUBMIT, variables: submission({ topic: NUL }), field: 'topic' },
  { name: 'NUL in submit studentQuery', query: SUBMIT, variables: submission({ studentQuery: NUL }), field: 'studentQuery' },
  { name: 'NUL in submit gradeLevel', query: SUBMIT, variables: submission({ gradeLevel: NUL }), field: 'gradeLevel' },
  { name: 'NUL in submit studentId', query: SUBMIT, variables: submission({ studentId: NUL }), as: 'admin', field: 'studentId' },
  { name: 'NUL in a metadata value', query: SUBMIT, variables: submission({ metadata: { note: NUL } }), field: 'metadata' },
  { name: 'NUL in a metadata key', query: SUBMIT, variables: submission({ metadata: { [NUL]: 1 } }), field: 'metadata' },
  { name: 'NUL in reportStage stage', query: REPORT, variables: report({ stage: NUL }), as: 'worker', field: 'stage' },
  { name: 'NUL in reportStage errorMessage', query: REPORT, variables: report({ status: 'FAILED', errorMessage: NUL }), as: 'worker', field: 'errorMessage' },
  { name: 'NUL in reportStage metadata', query: REPORT, variables: report({ metadata: { deep: [{ x: NUL }] } }), as: 'worker', field: 'metadata' },
  { name: 'NUL in filter studentId', query: LIST, variables: { filter: { studentId: NUL } }, field: 'studentId' },
  { name: 'NUL in filter organizationId', query: LIST, variables: { filter: { organizationId: NUL } }, field: 'organizationId' },
  { name: 'NUL in filter errorStage', query: LIST, variables: { filter: { errorStage: NUL } }, field: 'errorStage' },
  { name: 'NUL in requestMetrics organizationId', query: METRICS, variables: { organizationId: NUL }, as: 'admin', field: 'organizationId' },

  // Dates PostgreSQL (or JavaScript) cannot hold.
  { name: 'requestMetrics from year 0000', query: METRICS, variables: { from: '0000-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, as: 'admin', field: 'from' },
  { name: 'filter createdAfter year +275760', query: LIST, variables: { filter: { createdAfter: '+275760-09-13T00:00:00Z' } }, field: 'filter.createdAfter' },
  { name: 'filter createdBefore year -275760', query: LIST, variables: { filter: { createdBefore: '-271821-04-20T00:00:00Z' } }, field: 'filter.createdBefore' },
  { name: 'filter createdAfter year -100000', query: LIST, variables: { filter: { createdAfter: '-100000-01-01T00:00:00Z' } }, field: 'filter.createdAfter' },
  { name: 'a forged cursor from year 0000', query: LIST, variables: { after: cursorOf(['0000-01-01T00:00:00.000000Z', '6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f']) }, field: 'after' },

  // JSON nested far deeper than any metadata needs.
  { name: 'submit metadata nested 4,000 levels', query: SUBMIT, variables: submission({ metadata: nested(4_000) }), field: 'metadata' },
  { name: 'reportStage metadata nested 4,000 levels', query: REPORT, variables: report({ metadata: nested(4_000) }), as: 'worker', field: 'metadata' },
  { name: 'submit metadata nested 33 levels', query: SUBMIT, variables: submission({ metadata: nested(33) }), field: 'metadata' },
];

// Only the request id is filled in late; the nested values are passed as they are.
const resolve = (variables: Record<string, unknown>): Record<string, unknown> => {
  const input = variables.input as Record<string, unknown> | undefined;
  if (!input || typeof input.requestId !== 'function') return variables;
  return { ...variables, input: { ...input, requestId: (input.requestId as () => string)() } };
};

beforeAll(async () => {
  app = await startTestApp();
  tokens.student = await app.token({ sub: 'hostile-student', role: 'student', organization_id: 'hostile-org' });
  tokens.worker = await app.token({ sub: 'hostile-worker', role: 'worker' });
  tokens.admin = await app.token({ sub: 'hostile-admin', role: 'admin' });
  requestId = (await submitRequest({ url: app.url, token: tokens.student }, { correlationId: 'hostile-seed' })).id;
});
afterAll(() => app?.close());

describe('hostile input is BAD_USER_INPUT with the field', () => {
  test.each(cases)('$name', async (testCase) => {
    const response = await app.graphql(testCase.query, {
      token: tokens[testCase.as ?? 'student'],
      variables: resolve(testCase.variables),
    });
    const error = onlyError(response);
    expect(error.extensions?.code, JSON.stringify(error)).toBe('BAD_USER_INPUT');
    expect(error.extensions?.field, JSON.stringify(error)).toBe(testCase.field);
    expect(response.status).toBeLessThan(500);
    expect(JSON.stringify(response.errors)).not.toContain('\u0000');
  });

  test('metadata nested 32 levels is still accepted', async () => {
    const response = await app.graphql(SUBMIT, {
      token: tokens.student,
      variables: submission({ correlationId: 'hostile-deep-ok', metadata: nested(32) }),
    });
    expect(dataOf(response).submitContentRequest.created).toBe(true);
  });

  test('none of it was logged as unexpected', () => {
    expect(app.logs.filter((line) => line.level >= 50)).toEqual([]);
  });
});

describe('hostile input to a subscription', () => {
  test.each(['studentId', 'organizationId'])('NUL in contentRequestUpdates filter %s', async (field) => {
    const live = await subscribeSse(app.url, tokens.admin, UPDATES, { filter: { [field]: NUL } });
    await live.ended;
    const error = live.messages.at(-1)?.errors?.[0];
    expect(error?.extensions, JSON.stringify(live.messages)).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  test('none of it was logged as unexpected', () => {
    expect(app.logs.filter((line) => line.level >= 50)).toEqual([]);
  });
});

describe('a body that is not JSON', () => {
  test('a 900 KB invalid JSON body (under the body limit) gets a short coded 400, nothing of it echoed', async () => {
    const marker = 'ECHO-MARKER-';
    // A larger one is refused by size before it is read (test/api/body-limit.test.ts).
    const body = `{"query": "${marker}${'x'.repeat(900 * 1024)}`; // never closed
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body,
    });
    const text = await response.text();
    expect(text.length, text.slice(0, 300)).toBeLessThan(1_000);
    expect(text).not.toContain(marker);
    expect(text).not.toContain('xxxx');
    expect(response.status).toBe(400);
    const parsed = JSON.parse(text) as { errors: { extensions?: Record<string, unknown> }[] };
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]!.extensions?.code).toBe('BAD_REQUEST');
    // And not in the logs either.
    expect(JSON.stringify(app.logs)).not.toContain(marker);
  });

  test('invalid JSON in GET variables is a short coded 400 too', async () => {
    const marker = 'GET-MARKER';
    const url = `${app.url}/graphql?query=${encodeURIComponent('{ viewer { id } }')}&variables=${encodeURIComponent(`{"${marker}`)}`;
    const response = await fetch(url, { headers: { accept: 'application/graphql-response+json, application/json' } });
    const text = await response.text();
    expect(response.status, text).toBe(400);
    expect(text).not.toContain(marker);
    expect((JSON.parse(text) as { errors: { extensions?: Record<string, unknown> }[] }).errors[0]!.extensions?.code).toBe('BAD_REQUEST');
    expect(JSON.stringify(app.logs)).not.toContain(marker);
  });
});

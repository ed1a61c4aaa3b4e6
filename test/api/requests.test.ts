/**
 * Submitting, reading, cancelling and retrying requests through real HTTP:
 * idempotency on the correlation id (also under 20 concurrent submissions),
 * who a request is for, and what the lifecycle refuses.
 */
import { count, eq, or } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { driveToCompletion } from '../helpers/requests.js';

let app: TestApp;
let studentToken: string;
let adminToken: string;
beforeAll(async () => {
  app = await startTestApp();
  studentToken = await app.token({ sub: 'req-student', role: 'student', organization_id: 'req-org' });
  adminToken = await app.token({ sub: 'req-admin', role: 'admin' });
});
afterAll(() => app?.close());

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) {
  submitContentRequest(input: $input) {
    created
    request { id correlationId studentId organizationId topic studentQuery gradeLevel metadata status progressPercentage retryCount createdAt student { id role } organization { id name } }
  }
}`;

const submit = (input: Record<string, unknown>, token = studentToken) =>
  app.graphql(SUBMIT, { token, variables: { input } });

const input = (correlationId: string, extra: Record<string, unknown> = {}) => ({
  correlationId,
  topic: 'Fractions',
  studentQuery: 'Why is 1/2 the same as 2/4?',
  gradeLevel: '5',
  ...extra,
});

const rowsWithCorrelationId = async (correlationId: string) =>
  (
    await app.testDatabase.database.db
      .select({ n: count() })
      .from(contentRequests)
      // A student's key is stored scoped to them (correlation-scope.test.ts); the key as given beside it.
      .where(or(eq(contentRequests.correlationId, correlationId), eq(contentRequests.submittedCorrelationId, correlationId)))
  )[0]!.n;

describe('submitContentRequest', () => {
  test('creates a pending request for the student, in their organization, with a created event', async () => {
    const payload = dataOf(await submit(input('submit-1', { metadata: { source: 'web', tags: ['math'] } }))).submitContentRequest;
    expect(payload.created).toBe(true);
    expect(payload.request).toMatchObject({
      correlationId: 'submit-1',
      studentId: 'req-student',
      organizationId: 'req-org',
      topic: 'Fractions',
      gradeLevel: '5',
      metadata: { source: 'web', tags: ['math'] },
      status: 'PENDING',
      progressPercentage: 0,
      retryCount: 0,
      student: { id: 'req-student', role: 'STUDENT' },
      organization: { id: 'req-org', name: 'req-org' },
    });
    expect(payload.request.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Date(payload.request.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const events = await app.testDatabase.database.db
      .select()
      .from(requestEvents)
      .where(eq(requestEvents.requestId, payload.request.id));
    expect(events.map((e) => [e.sequence, e.eventType])).toEqual([[1, 'created']]);
  });

  test('the same correlation id returns the same request with created: false', async () => {
    const first = dataOf(await submit(input('submit-2'))).submitContentRequest;
    const again = dataOf(await submit(input('submit-2'))).submitContentRequest;
    expect(again.created).toBe(false);
    expect(again.request.id).toBe(first.request.id);
    expect(await rowsWithCorrelationId('submit-2')).toBe(1);
  });

  test('20 concurrent submissions of one id create exactly one row', async () => {
    const responses = await Promise.all(Array.from({ length: 20 }, () => submit(input('submit-concurrent'))));
    const payloads = responses.map((response) => dataOf(response).submitContentRequest);
    expect(payloads.filter((p) => p.created)).toHaveLength(1);
    expect(new Set(payloads.map((p) => p.request.id)).size).toBe(1);
    expect(await rowsWithCorrelationId('submit-concurrent')).toBe(1);
  });

  test('reusing a correlation id for a different request is a CONFLICT', async () => {
    dataOf(await submit(input('submit-3')));
    const response = await submit(input('submit-3', { topic: 'Decimals' }));
    const error = onlyError(response);
    expect(error.extensions).toMatchObject({ code: 'CONFLICT', field: 'correlationId' });
    expect(error.message).not.toContain('submit-3'); // the key is not echoed back
    expect(await rowsWithCorrelationId('submit-3')).toBe(1);
    // Another student's keys are their own: the same text is a request of theirs, revealing nothing.
    const otherToken = await app.token({ sub: 'req-other-student', role: 'student', organization_id: 'req-org' });
    const other = dataOf(await submit(input('submit-3'), otherToken)).submitContentRequest;
    expect(other).toMatchObject({ created: true, request: { studentId: 'req-other-student' } });
    expect(await rowsWithCorrelationId('submit-3')).toBe(2);
  });

  test('a student submits only for themselves; an admin for any known student', async () => {
    const forbidden = onlyError(await submit(input('submit-4', { studentId: 'someone-else' })));
    expect(forbidden.extensions?.code).toBe('FORBIDDEN');
    expect(await rowsWithCorrelationId('submit-4')).toBe(0);

    const onBehalf = dataOf(await submit(input('submit-5', { studentId: 'req-student' }), adminToken)).submitContentRequest;
    expect(onBehalf.request).toMatchObject({ studentId: 'req-student', organizationId: 'req-org' });

    const unknown = onlyError(await submit(input('submit-6', { studentId: 'nobody-at-all' }), adminToken));
    expect(unknown.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'studentId' });
  });
});

describe('reading one request', () => {
  test('by id and by correlation id', async () => {
    const created = dataOf(await submit(input('read-1'))).submitContentRequest.request;
    const byId = dataOf(
      await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { id correlationId status } }`, {
        token: studentToken,
        variables: { id: created.id },
      }),
    ).contentRequest;
    expect(byId).toEqual({ id: created.id, correlationId: 'read-1', status: 'PENDING' });
    const byCorrelation = dataOf(
      await app.graphql(`query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id } }`, {
        token: studentToken,
        variables: { c: 'read-1' },
      }),
    ).contentRequestByCorrelationId;
    expect(byCorrelation).toEqual({ id: created.id });
  });

  test('an id that does not exist is NOT_FOUND', async () => {
    const response = await app.graphql(`{ contentRequest(id: "00000000-0000-4000-8000-000000000000") { id } }`, {
      token: studentToken,
    });
    expect(onlyError(response).extensions?.code).toBe('NOT_FOUND');
    expect(response.data).toEqual({ contentRequest: null });
  });

  test('viewer is the signed-in user', async () => {
    const viewer = dataOf(await app.graphql(`{ viewer { id role organizationId organization { id } } }`, { token: studentToken })).viewer;
    expect(viewer).toEqual({ id: 'req-student', role: 'STUDENT', organizationId: 'req-org', organization: { id: 'req-org' } });
  });
});

describe('cancel and retry', () => {
  const CANCEL = `mutation ($id: ID!) { cancelContentRequest(id: $id) { id status } }`;
  const RETRY = `mutation ($id: ID!) { retryContentRequest(id: $id) { id status retryCount } }`;

  test('a pending request can be cancelled, once; a cancelled one cannot be retried', async () => {
    const { id } = dataOf(await submit(input('cancel-1'))).submitContentRequest.request;
    expect(dataOf(await app.graphql(CANCEL, { token: studentToken, variables: { id } })).cancelContentRequest).toEqual({
      id,
      status: 'CANCELLED',
    });
    const retry = await app.graphql(RETRY, { token: studentToken, variables: { id } });
    expect(onlyError(retry).extensions?.code).toBe('INVALID_TRANSITION');
    const events = await app.testDatabase.database.db.select().from(requestEvents).where(eq(requestEvents.requestId, id));
    expect(events.map((e) => e.eventType)).toEqual(['created', 'cancel']);
  });

  test('a completed request cannot be cancelled', async () => {
    const { id } = dataOf(await submit(input('cancel-2'))).submitContentRequest.request;
    await driveToCompletion({ url: app.url, token: await app.token({ sub: 'req-worker', role: 'worker' }) }, id);
    const response = await app.graphql(CANCEL, { token: studentToken, variables: { id } });
    const error = onlyError(response);
    expect(error.extensions?.code).toBe('INVALID_TRANSITION');
    expect(error.message).toMatch(/completed to cancelled/);
  });

  test('only a failed request can be retried', async () => {
    const { id } = dataOf(await submit(input('retry-1'))).submitContentRequest.request;
    const response = await app.graphql(RETRY, { token: studentToken, variables: { id } });
    expect(onlyError(response).extensions?.code).toBe('INVALID_TRANSITION');
    expect(onlyError(response).message).toMatch(/only a failed request can be retried/);
  });
});

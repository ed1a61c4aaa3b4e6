/**
 * Idempotency keys are the submitter's own (issue item 10): a student's keys
 * are scoped to that student, so one student's key can neither reveal nor
 * block another's request; workers and admins keep global correlation ids,
 * which the original system's worker checks idempotency by.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  app = await startTestApp();
  tokens.ana = await app.token({ sub: 'scope-ana', role: 'student', organization_id: 'scope-org' });
  tokens.ben = await app.token({ sub: 'scope-ben', role: 'student', organization_id: 'scope-org' });
  tokens.worker = await app.token({ sub: 'scope-worker', role: 'worker' });
  tokens.admin = await app.token({ sub: 'scope-admin', role: 'admin' });
});
afterAll(() => app?.close());

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) {
  submitContentRequest(input: $input) { created request { id correlationId studentId } }
}`;
const BY_CORRELATION = `query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id correlationId studentId } }`;
const ACTIVE = `{ activeRequests { id correlationId } }`;

const submit = (who: string, correlationId: string, extra: Record<string, unknown> = {}) =>
  app.graphql(SUBMIT, {
    token: tokens[who],
    variables: { input: { correlationId, topic: 'Volcanoes', studentQuery: 'Why do they erupt?', ...extra } },
  });
const lookup = (who: string, correlationId: string) => app.graphql(BY_CORRELATION, { token: tokens[who], variables: { c: correlationId } });

describe('a student’s keys are their own', () => {
  test('submitting under another student’s used key creates a request of your own, no CONFLICT', async () => {
    const anas = dataOf(await submit('ana', 'homework-1')).submitContentRequest;
    const bens = await submit('ben', 'homework-1');
    expect(bens.errors).toBeUndefined();
    expect(dataOf(bens).submitContentRequest).toMatchObject({
      created: true,
      request: { correlationId: 'homework-1', studentId: 'scope-ben' },
    });
    expect(dataOf(bens).submitContentRequest.request.id).not.toBe(anas.request.id);
  });

  test('taking a student’s next key first does not block them', async () => {
    const squatter = dataOf(await submit('ben', 'ana-next')).submitContentRequest;
    const anas = dataOf(await submit('ana', 'ana-next')).submitContentRequest;
    expect(anas).toMatchObject({ created: true, request: { studentId: 'scope-ana', correlationId: 'ana-next' } });
    expect(anas.request.id).not.toBe(squatter.request.id);
  });

  test('each student’s lookup finds their own request, and a key only someone else used is NOT_FOUND', async () => {
    const anas = dataOf(await submit('ana', 'lookup-1')).submitContentRequest.request;
    const bens = dataOf(await submit('ben', 'lookup-1')).submitContentRequest.request;
    expect(dataOf(await lookup('ana', 'lookup-1')).contentRequestByCorrelationId).toEqual(anas);
    expect(dataOf(await lookup('ben', 'lookup-1')).contentRequestByCorrelationId).toEqual(bens);
    await submit('ana', 'only-ana');
    expect(onlyError(await lookup('ben', 'only-ana')).extensions?.code).toBe('NOT_FOUND');
  });

  test('resubmitting your own key is still idempotent, and a different request under it is still a CONFLICT', async () => {
    const first = dataOf(await submit('ana', 'again-1')).submitContentRequest;
    const second = dataOf(await submit('ana', 'again-1')).submitContentRequest;
    expect(second).toEqual({ ...first, created: false });
    const conflict = onlyError(await submit('ana', 'again-1', { topic: 'Something else' }));
    expect(conflict.extensions).toMatchObject({ code: 'CONFLICT', field: 'correlationId' });
  });

  test('what is stored is bounded and not the raw key, even for the longest key; the API shows the key as given', async () => {
    const longKey = 'k'.repeat(255);
    const request = dataOf(await submit('ana', longKey)).submitContentRequest.request;
    expect(request.correlationId).toBe(longKey);
    const [row] = await app.testDatabase.database.db.select().from(contentRequests).where(eq(contentRequests.id, request.id));
    expect(row!.correlationId).not.toBe(longKey);
    expect(row!.correlationId.length).toBeLessThanOrEqual(255);
    const active = dataOf(await app.graphql(ACTIVE, { token: tokens.ana })).activeRequests as { id: string; correlationId: string }[];
    expect(active.find((r) => r.id === request.id)?.correlationId).toBe(longKey);
  });
});

describe('workers and admins keep global correlation ids', () => {
  test('a worker’s key is global: stored as given, found by anyone who may see the request, a CONFLICT for another request', async () => {
    const created = dataOf(await submit('worker', 'pipeline-42', { studentId: 'scope-ana' })).submitContentRequest;
    expect(created).toMatchObject({ created: true, request: { correlationId: 'pipeline-42', studentId: 'scope-ana' } });
    const [row] = await app.testDatabase.database.db.select().from(contentRequests).where(eq(contentRequests.id, created.request.id));
    expect(row!.correlationId).toBe('pipeline-42');
    expect(dataOf(await lookup('admin', 'pipeline-42')).contentRequestByCorrelationId.id).toBe(created.request.id);
    expect(dataOf(await submit('admin', 'pipeline-42', { studentId: 'scope-ana' })).submitContentRequest).toEqual({
      ...created,
      created: false,
    });
    expect(onlyError(await submit('admin', 'pipeline-42', { studentId: 'scope-ben' })).extensions?.code).toBe('CONFLICT');
  });

  test('a student’s key does not collide with a worker’s global key of the same text', async () => {
    const workers = dataOf(await submit('worker', 'same-text', { studentId: 'scope-ben' })).submitContentRequest.request;
    const bens = dataOf(await submit('ben', 'same-text')).submitContentRequest;
    expect(bens.created).toBe(true);
    expect(bens.request.id).not.toBe(workers.id);
    expect(dataOf(await lookup('worker', 'same-text')).contentRequestByCorrelationId.id).toBe(workers.id);
  });
});

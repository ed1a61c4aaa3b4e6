/**
 * A write through the API that would leave a request's status where it is
 * (cancelling a cancelled request) is not a transition: INVALID_TRANSITION,
 * and the row, updatedAt included, and the event log stay as they were.
 */
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';

let app: TestApp;
let studentToken: string;
let workerToken: string;
beforeAll(async () => {
  app = await startTestApp();
  studentToken = await app.token({ sub: 'same-status-student', role: 'student', organization_id: 'same-status-org' });
  workerToken = await app.token({ sub: 'same-status-worker', role: 'worker' });
});
afterAll(() => app?.close());

const CANCEL = `mutation ($id: ID!) { cancelContentRequest(id: $id) { id status updatedAt } }`;
const RETRY = `mutation ($id: ID!) { retryContentRequest(id: $id) { id status } }`;

const submit = async (correlationId: string) => (await submitRequest({ url: app.url, token: studentToken }, { correlationId })).id;
const worker = (): Client => ({ url: app.url, token: workerToken });

async function rowAndEvents(id: string) {
  const db = app.testDatabase.database.db;
  const [row] = await db.select().from(contentRequests).where(eq(contentRequests.id, id));
  const events = await db.select().from(requestEvents).where(eq(requestEvents.requestId, id)).orderBy(asc(requestEvents.sequence));
  return { row, events };
}

describe('same-status writes through the API', () => {
  test('cancelling a cancelled request is INVALID_TRANSITION and changes nothing', async () => {
    const id = await submit('same-status-cancel');
    expect(dataOf(await app.graphql(CANCEL, { token: studentToken, variables: { id } })).cancelContentRequest.status).toBe('CANCELLED');
    const before = await rowAndEvents(id);

    const error = onlyError(await app.graphql(CANCEL, { token: studentToken, variables: { id } }));
    expect(error.extensions?.code).toBe('INVALID_TRANSITION');
    expect(error.message).toContain('cancelled');

    const after = await rowAndEvents(id);
    expect(after.row).toEqual(before.row);
    expect(after.events).toEqual(before.events);
  });

  test('cancelling a completed or failed request is INVALID_TRANSITION too', async () => {
    const failed = await submit('same-status-failed');
    await reportStage(worker(), failed, 'validation', 'FAILED', undefined, { errorMessage: 'bad' });
    const before = await rowAndEvents(failed);
    expect(before.row!.status).toBe('failed');
    const error = onlyError(await app.graphql(CANCEL, { token: studentToken, variables: { id: failed } }));
    expect(error.extensions?.code).toBe('INVALID_TRANSITION');
    expect(await rowAndEvents(failed)).toEqual(before);
  });

  test('retrying a pending request is INVALID_TRANSITION and changes nothing', async () => {
    const id = await submit('same-status-retry');
    const before = await rowAndEvents(id);
    const error = onlyError(await app.graphql(RETRY, { token: studentToken, variables: { id } }));
    expect(error.extensions?.code).toBe('INVALID_TRANSITION');
    expect(await rowAndEvents(id)).toEqual(before);
  });

  test('cancelling an in-flight request still works', async () => {
    const id = await submit('same-status-inflight');
    await reportStage(worker(), id, 'validation', 'IN_PROGRESS');
    expect(dataOf(await app.graphql(CANCEL, { token: studentToken, variables: { id } })).cancelContentRequest.status).toBe('CANCELLED');
  });
});

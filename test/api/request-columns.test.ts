/**
 * A page of requests reads only the columns its selection's fields use
 * (src/schema/request-columns.ts), as does a request by id or by correlation
 * id, and every field still answers what a read of every field answers: each
 * ContentRequest field alone, and fields through fragments and aliases.
 * Statements counted at the driver, through real HTTP.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { insertOrganization, insertRequest, insertUser } from '../helpers/factories.js';

const statements: string[] = [];
let app: TestApp;
let adminToken: string;
const ids: string[] = [];

beforeAll(async () => {
  app = await startTestApp({
    onQuery: (query) => statements.push(query),
    env: { STALL_CHECK_INTERVAL_SECONDS: '0', METRICS_ROLLUP_INTERVAL_SECONDS: '0', STAGE_ESTIMATES_REFRESH_SECONDS: '0', RETENTION_DAYS: '0' },
  });
  const db = app.testDatabase.database.db;
  await insertOrganization(db, { organizationId: 'columns-org', name: 'Columns' });
  await insertUser(db, { userId: 'columns-student', organizationId: 'columns-org', role: 'student' });
  // Every column holding something: documents, an error, the times (the triggers set them on the way).
  const failed = await insertRequest(db, {
    studentId: 'columns-student',
    organizationId: 'columns-org',
    correlationId: 'columns-failed',
    metadata: { source: 'test', nested: { a: [1, 2] } },
  });
  await db
    .update(contentRequests)
    .set({ status: 'validating', currentStage: 'validation', progressPercentage: 55 })
    .where(eq(contentRequests.id, failed.id));
  await db
    .update(contentRequests)
    .set({ status: 'failed', result: { partial: true }, errorMessage: 'model timed out', errorStage: 'validation' })
    .where(eq(contentRequests.id, failed.id));
  ids.push(failed.id);
  ids.push((await insertRequest(db, { studentId: 'columns-student', organizationId: 'columns-org', correlationId: 'columns-new' })).id);
  adminToken = await app.token({ sub: 'columns-admin', role: 'admin' });
});
afterAll(() => app?.close());

/** A selection for each kind of field: a scalar as it is, an object by a field or two. */
const SUBSELECTIONS: Record<string, string> = {
  stages: '{ stage status }',
  events: '(first: 5) { edges { node { sequence eventType } } pageInfo { hasNextPage } }',
  student: '{ id role }',
  organization: '{ id name }',
};

async function requestFields(): Promise<string[]> {
  const { __type } = dataOf(await app.graphql(`{ __type(name: "ContentRequest") { fields { name } } }`, { token: adminToken }));
  return (__type.fields as { name: string }[]).map((field) => field.name);
}

/** The statement that read the page (content_requests, with its cursor column). */
function pageStatement(): string {
  const page = statements.filter((statement) => /from "content_requests"/.test(statement) && statement.includes('to_char'));
  expect(page).toHaveLength(1);
  return page[0]!;
}

async function page(selection: string) {
  statements.length = 0;
  const { contentRequests } = dataOf(await app.graphql(`{ contentRequests(first: 10) { edges { node { id ${selection} } } } }`, { token: adminToken }));
  const byId = new Map((contentRequests.edges as { node: Record<string, unknown> & { id: string } }[]).map(({ node }) => [node.id, node]));
  return { byId, statement: pageStatement() };
}

async function byId(id: string, selection: string) {
  const { contentRequest } = dataOf(await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { id ${selection} } }`, { token: adminToken, variables: { id } }));
  return contentRequest as Record<string, unknown>;
}

async function byCorrelationId(correlationId: string, selection: string) {
  const { contentRequestByCorrelationId } = dataOf(
    await app.graphql(`query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id ${selection} } }`, { token: adminToken, variables: { c: correlationId } }),
  );
  return contentRequestByCorrelationId as Record<string, unknown>;
}

/** Every field of each request at once: every column read, whatever any field declares. */
async function wholeRows(fields: string[]) {
  const selection = fields.map((field) => `${field} ${SUBSELECTIONS[field] ?? ''}`).join(' ');
  return new Map(await Promise.all(ids.map(async (id) => [id, await byId(id, selection)] as const)));
}

/** The same value, or for the estimates (counted from the moment of each read) one a few seconds apart. */
function expectSameField(field: string, actual: unknown, expected: unknown, where: string) {
  if (field === 'estimatedCompletionAt' && typeof expected === 'string') {
    expect(Math.abs(Date.parse(String(actual)) - Date.parse(expected)), where).toBeLessThan(5_000);
  } else if (field === 'estimatedSecondsRemaining' && typeof expected === 'number') {
    expect(Math.abs(Number(actual) - expected), where).toBeLessThanOrEqual(5);
  } else {
    expect(actual, where).toEqual(expected);
  }
}

describe('a page of requests reads the columns its fields use', () => {
  test('a history page names its six columns and not the documents', async () => {
    const { statement } = await page('status createdAt topic progressPercentage currentStage');
    for (const column of ['"id"', '"status"', '"created_at"', '"topic"', '"progress_percentage"', '"current_stage"']) expect(statement).toContain(column);
    for (const column of ['"student_query"', '"metadata"', '"result"', '"error_message"', '"updated_at"', '"failed_at"']) expect(statement).not.toContain(column);
  });

  test('each field, asked alone of a page, by id or by correlation id, answers what a read of every field answers', async () => {
    const fields = (await requestFields()).filter((name) => name !== 'id');
    expect(fields.length).toBeGreaterThan(20);
    const whole = await wholeRows(fields);
    for (const field of fields) {
      const selection = `${field} ${SUBSELECTIONS[field] ?? ''}`;
      const { byId: fromPage } = await page(selection);
      for (const id of ids) {
        const expected = whole.get(id)![field];
        expectSameField(field, fromPage.get(id)?.[field], expected, `${field} of ${id}, from a page`);
        expectSameField(field, (await byId(id, selection))[field], expected, `${field} of ${id}, by id`);
        const key = whole.get(id)!.correlationId as string;
        expectSameField(field, (await byCorrelationId(key, selection))[field], expected, `${field} of ${id}, by correlation id`);
      }
    }
  });

  test('a request by id or by correlation id reads the columns its fields use', async () => {
    statements.length = 0;
    await byId(ids[0]!, 'topic');
    await byCorrelationId('columns-failed', 'status');
    const reads = statements.filter((statement) => /from "content_requests"/.test(statement));
    expect(reads).toHaveLength(2);
    for (const read of reads) for (const column of ['"student_query"', '"metadata"', '"result"']) expect(read).not.toContain(column);
    expect(reads[0]).toContain('"topic"');
    expect(reads[1]).toContain('"status"');
  });

  test('fields in fragments, inline fragments and under aliases are read too', async () => {
    const selection = `
      ... on ContentRequest { errorMessage }
      ...Times
      doc: metadata
      key: correlationId
      eta: estimatedSecondsRemaining
      hidden: result @skip(if: true)`;
    const fragment = `fragment Times on ContentRequest { failedAt startedAt }`;
    statements.length = 0;
    const { contentRequests } = dataOf(
      await app.graphql(`{ contentRequests(first: 10) { edges { node { id ${selection} } } } } ${fragment}`, { token: adminToken }),
    );
    const statement = pageStatement();
    for (const column of ['"error_message"', '"failed_at"', '"started_at"', '"metadata"', '"correlation_id"', '"submitted_correlation_id"', '"result"']) {
      expect(statement).toContain(column);
    }
    const answered = (contentRequests.edges as { node: Record<string, unknown> }[]).find(({ node }) => node.id === ids[0])!.node;
    const whole = (await wholeRows(['errorMessage', 'failedAt', 'startedAt'])).get(ids[0]!)!;
    expect(answered).toEqual({
      id: ids[0],
      errorMessage: 'model timed out',
      failedAt: whole.failedAt,
      startedAt: whole.startedAt,
      doc: { source: 'test', nested: { a: [1, 2] } },
      key: 'columns-failed',
      eta: null,
    });
    expect(whole.failedAt).toEqual(expect.any(String));
  });

  test('the same operation twice reads the same columns (the selection is worked out once per document)', async () => {
    const first = await page('topic');
    const second = await page('topic');
    expect(second.statement).toBe(first.statement);
    expect(first.statement).not.toContain('"metadata"');
  });
});

/**
 * Who sees what (docs/access.md), through real HTTP: a request out of reach
 * answers exactly like one that does not exist, for reads, lists and writes.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { submitRequest } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<string, string> = {};
// Two students of one school, one of another, their admins, a platform admin, a worker.
const people = {
  ana: { sub: 'ana', role: 'student', organization_id: 'north' },
  ben: { sub: 'ben', role: 'student', organization_id: 'north' },
  cho: { sub: 'cho', role: 'student', organization_id: 'south' },
  northAdmin: { sub: 'north-admin', role: 'org_admin', organization_id: 'north' },
  southAdmin: { sub: 'south-admin', role: 'org_admin', organization_id: 'south' },
  admin: { sub: 'root', role: 'admin' },
  worker: { sub: 'worker', role: 'worker' },
} as const;
const requestOf: Record<string, { id: string; correlationId: string }> = {};

beforeAll(async () => {
  app = await startTestApp();
  for (const [name, claims] of Object.entries(people)) tokens[name] = await app.token(claims);
  for (const student of ['ana', 'ben', 'cho']) {
    const correlationId = `access-${student}`;
    const { id } = await submitRequest({ url: app.url, token: tokens[student]! }, { correlationId, topic: `${student}'s topic`, studentQuery: 'q' });
    requestOf[student] = { id, correlationId };
  }
});
afterAll(() => app?.close());

const READ = `query ($id: ID!) { contentRequest(id: $id) { id topic } }`;
const BY_CORRELATION = `query ($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id } }`;
const LIST = `{ contentRequests(first: 100) { edges { node { id studentId } } } }`;
const ABSENT = '00000000-0000-4000-8000-000000000000';

async function visibleTo(who: string): Promise<string[]> {
  const edges = dataOf(await app.graphql(LIST, { token: tokens[who] })).contentRequests.edges as { node: { studentId: string } }[];
  return edges.map((edge) => edge.node.studentId).sort();
}

describe('reading', () => {
  test('each role lists exactly the requests in its reach', async () => {
    expect(await visibleTo('ana')).toEqual(['ana']);
    expect(await visibleTo('cho')).toEqual(['cho']);
    expect(await visibleTo('northAdmin')).toEqual(['ana', 'ben']);
    expect(await visibleTo('southAdmin')).toEqual(['cho']);
    expect(await visibleTo('admin')).toEqual(['ana', 'ben', 'cho']);
    expect(await visibleTo('worker')).toEqual(['ana', 'ben', 'cho']);
  });

  test('filtering on another student does not widen a student’s reach', async () => {
    const response = await app.graphql(`{ contentRequests(first: 10, filter: { studentId: "ben" }) { edges { node { id } } } }`, {
      token: tokens.ana,
    });
    expect(dataOf(response).contentRequests.edges).toEqual([]);
  });

  test('another student’s request answers exactly like one that does not exist', async () => {
    const other = await app.graphql(READ, { token: tokens.ana, variables: { id: requestOf.ben!.id } });
    const absent = await app.graphql(READ, { token: tokens.ana, variables: { id: ABSENT } });
    expect(onlyError(other).extensions?.code).toBe('NOT_FOUND');
    // Same shape and wording, only the id differs.
    expect(onlyError(other).message.replace(requestOf.ben!.id, 'ID')).toBe(onlyError(absent).message.replace(ABSENT, 'ID'));
    expect(other.data).toEqual({ contentRequest: null });

    const byCorrelation = await app.graphql(BY_CORRELATION, { token: tokens.ana, variables: { c: requestOf.ben!.correlationId } });
    expect(onlyError(byCorrelation).extensions?.code).toBe('NOT_FOUND');
  });

  test('one viewer after another of the same role reads by id and by correlation id only what is in their own reach', async () => {
    // The lookups' statements are built once per role and filled with each viewer's ids: alternate viewers on them.
    for (const [who, own, other] of [
      ['ana', 'ana', 'cho'],
      ['cho', 'cho', 'ana'],
      ['northAdmin', 'ben', 'cho'],
      ['southAdmin', 'cho', 'ben'],
      ['ben', 'ben', 'ana'],
    ] as const) {
      const mine = requestOf[own]!;
      const theirs = requestOf[other]!;
      expect(dataOf(await app.graphql(READ, { token: tokens[who], variables: { id: mine.id } })).contentRequest.id).toBe(mine.id);
      expect(onlyError(await app.graphql(READ, { token: tokens[who], variables: { id: theirs.id } })).extensions?.code).toBe('NOT_FOUND');
      if (who === own) {
        const found = await app.graphql(BY_CORRELATION, { token: tokens[who], variables: { c: mine.correlationId } });
        expect(dataOf(found).contentRequestByCorrelationId.id).toBe(mine.id);
      }
      const refused = await app.graphql(BY_CORRELATION, { token: tokens[who], variables: { c: theirs.correlationId } });
      expect(onlyError(refused).extensions?.code).toBe('NOT_FOUND');
    }
  });

  test('an org admin reads their organization’s requests, not another’s', async () => {
    expect(dataOf(await app.graphql(READ, { token: tokens.northAdmin, variables: { id: requestOf.ben!.id } })).contentRequest.id).toBe(
      requestOf.ben!.id,
    );
    const response = await app.graphql(READ, { token: tokens.northAdmin, variables: { id: requestOf.cho!.id } });
    expect(onlyError(response).extensions?.code).toBe('NOT_FOUND');
  });
});

describe('writing', () => {
  test('a student cannot cancel, retry or report on another student’s request, and nothing changes', async () => {
    const target = requestOf.ben!.id;
    const cancel = await app.graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }`, {
      token: tokens.ana,
      variables: { id: target },
    });
    expect(onlyError(cancel).extensions?.code).toBe('NOT_FOUND');
    const retry = await app.graphql(`mutation ($id: ID!) { retryContentRequest(id: $id) { id } }`, {
      token: tokens.ana,
      variables: { id: target },
    });
    expect(onlyError(retry).extensions?.code).toBe('NOT_FOUND');
    const report = await app.graphql(`mutation ($input: ReportStageInput!) { reportStage(input: $input) { id } }`, {
      token: tokens.ana,
      variables: { input: { requestId: target, stage: 'validation', status: 'IN_PROGRESS' } },
    });
    expect(onlyError(report).extensions?.code).toBe('FORBIDDEN');

    const [row] = await app.testDatabase.database.db.select().from(contentRequests).where(eq(contentRequests.id, target));
    expect(row).toMatchObject({ status: 'pending', currentStage: null, retryCount: 0 });
  });

  test('an org admin cannot submit for a student of another organization', async () => {
    const response = await app.graphql(
      `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { request { id } } }`,
      { token: tokens.northAdmin, variables: { input: { correlationId: 'access-cross', topic: 't', studentQuery: 'q', studentId: 'cho' } } },
    );
    expect(onlyError(response).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'studentId' });
  });

  test('an org admin may cancel their organization’s request', async () => {
    const response = await app.graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { status } }`, {
      token: tokens.northAdmin,
      variables: { id: requestOf.ben!.id },
    });
    expect(dataOf(response).cancelContentRequest).toEqual({ status: 'CANCELLED' });
  });
});

describe('metrics and monitoring', () => {
  test('students and workers cannot read request metrics; an org admin cannot read another organization’s', async () => {
    for (const who of ['ana', 'worker']) {
      const response = await app.graphql(`{ requestMetrics { hour } }`, { token: tokens[who] });
      expect(onlyError(response).extensions?.code).toBe('FORBIDDEN');
    }
    const other = await app.graphql(`{ requestMetrics(organizationId: "south") { hour } }`, { token: tokens.northAdmin });
    expect(onlyError(other).extensions?.code).toBe('FORBIDDEN');
    expect(dataOf(await app.graphql(`{ requestMetrics { hour } }`, { token: tokens.northAdmin })).requestMetrics).toEqual([]);
  });

  test('activeRequests is scoped like every other read', async () => {
    const ids = async (who: string) =>
      (dataOf(await app.graphql(`{ activeRequests { studentId } }`, { token: tokens[who] })).activeRequests as { studentId: string }[])
        .map((r) => r.studentId)
        .sort();
    expect(await ids('cho')).toEqual(['cho']);
    expect(await ids('southAdmin')).toEqual(['cho']);
    expect(await ids('admin')).toContain('cho');
  });
});

/**
 * What a client is told when things go wrong, through real HTTP: no token,
 * document limits, masked unexpected errors and request ids. Refused tokens
 * are in authentication.test.ts, refused settings in configuration.test.ts.
 */
import { sql } from 'drizzle-orm';
import { Lexer, Source, TokenKind } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DOCUMENT_LIMITS } from '../../src/http/graphql-server.js';
import { dataOf, expectNothingInternal, onlyError, startTestApp, type GraphQLResponse, type TestApp } from '../helpers/app.js';
import { submitRequest } from '../helpers/requests.js';

let app: TestApp;
let studentToken: string;
let adminToken: string;
beforeAll(async () => {
  app = await startTestApp();
  studentToken = await app.token({ sub: 'errors-student', role: 'student', organization_id: 'errors-org' });
  adminToken = await app.token({ sub: 'errors-admin', role: 'admin' });
});
afterAll(() => app?.close());

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('without a token', () => {
  test.each([
    ['viewer', `{ viewer { id } }`],
    ['contentRequests', `{ contentRequests { edges { cursor } } }`],
    ['pipelineStages', `{ pipelineStages { name } }`],
    ['contentRequest', `{ contentRequest(id: "6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f") { id } }`],
    ['submitContentRequest', `mutation { submitContentRequest(input: { correlationId: "anon-1", topic: "t", studentQuery: "q" }) { created } }`],
  ])('%s is UNAUTHENTICATED with HTTP 401', async (_field, query) => {
    const response = await app.graphql(query, { token: null });
    expect(response.status).toBe(401);
    const error = onlyError(response);
    expect(error.extensions?.code).toBe('UNAUTHENTICATED');
    expect(error.message).toMatch(/Authorization: Bearer/);
    // The field answers null (or the whole data does, for a non-null field): nothing leaks.
    for (const value of Object.values(response.data ?? {})) expect(value).toBeNull();
  });

  test('the schema itself is readable', async () => {
    const response = await app.graphql(`{ __schema { queryType { name } mutationType { name } } }`, { token: null });
    expect(response.status).toBe(200);
    expect(dataOf(response)).toEqual({ __schema: { queryType: { name: 'Query' }, mutationType: { name: 'Mutation' } } });
  });

  test.each(['/health', '/ready'])('%s answers 200', async (path) => {
    const response = await fetch(`${app.url}${path}`);
    expect(response.status).toBe(200);
  });
});

function countTokens(document: string): number {
  const lexer = new Lexer(new Source(document));
  let n = 0;
  while (lexer.advance().kind !== TokenKind.EOF) n++;
  return n;
}

describe('document limits', () => {
  /** `__type` is not exempt from the depth limit (only `__schema` is), and needs no token. */
  const introspectionOfDepth = (depth: number) => {
    // __type(1) fields(2) then type/ofType… down to a leaf `name`.
    let selection = 'name';
    for (let level = depth - 1; level > 2; level--) selection = `${level === 3 ? 'type' : 'ofType'} { ${selection} }`;
    return `{ __type(name: "ContentRequest") { fields { ${selection} } } }`;
  };
  const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: pipelineStages { name }`).join(' ')} }`;
  const nested = (pageSize: number) =>
    `{ contentRequests(first: ${pageSize}) { edges { node { id events(first: ${pageSize}) { edges { node { id } } } } } } }`;
  // Repeating one field trips graphql-js's own overlap budget first; a long JSON literal does not.
  const tokens = (total: number) =>
    `mutation { submitContentRequest(input: { correlationId: "errors-tokens-${total}", topic: "t", studentQuery: "q", metadata: { list: [${Array.from(
      { length: total - 30 }, // 30: the tokens around the list
      () => '0',
    ).join(' ')}] } }) { created } }`;

  test.each([
    {
      limit: 'depth',
      allowed: introspectionOfDepth(DOCUMENT_LIMITS.depth),
      refused: introspectionOfDepth(DOCUMENT_LIMITS.depth + 1),
      message: `Query depth limit of ${DOCUMENT_LIMITS.depth} exceeded, found ${DOCUMENT_LIMITS.depth + 1}`,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      limit: 'aliases',
      allowed: aliases(DOCUMENT_LIMITS.aliases),
      refused: aliases(DOCUMENT_LIMITS.aliases + 1),
      message: `Aliases limit of ${DOCUMENT_LIMITS.aliases} exceeded, found ${DOCUMENT_LIMITS.aliases + 1}`,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      limit: 'cost',
      allowed: nested(10),
      refused: nested(100),
      message: `Query Cost limit of ${DOCUMENT_LIMITS.cost} exceeded`,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      limit: 'tokens',
      allowed: tokens(DOCUMENT_LIMITS.tokens),
      refused: tokens(DOCUMENT_LIMITS.tokens + 1),
      message: `Token limit of ${DOCUMENT_LIMITS.tokens} exceeded`,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
  ])('the $limit limit refuses an abusive document with $code', async ({ limit, allowed, refused, message, code }) => {
    if (limit === 'tokens') {
      expect(countTokens(allowed)).toBe(DOCUMENT_LIMITS.tokens);
      expect(countTokens(refused)).toBe(DOCUMENT_LIMITS.tokens + 1);
    }
    // Just under the limit the same kind of document runs: it is the limit that refuses, not the schema.
    const ok = await app.graphql(allowed, { token: adminToken });
    expect(ok.errors, JSON.stringify(ok.errors)).toBeUndefined();

    const response = await app.graphql(refused, { token: adminToken });
    expect(response.status).toBe(400);
    const error = onlyError(response);
    expect(error.extensions).toMatchObject({ code, limit, field: 'query' });
    expect(error.message).toContain(message);
    expect(response.data).toBeUndefined();
    expectNothingInternal(response);
  });
});

describe('unexpected errors', () => {
  test('are masked, carry the request id, and are logged once with it', async () => {
    const submitted = (await submitRequest({ url: app.url, token: studentToken }, { correlationId: 'errors-unexpected-1' })).id;

    const db = app.testDatabase.database.db;
    const logsBefore = app.logs.length;
    await db.execute(sql`alter table request_stages rename to request_stages_elsewhere`);
    let response: GraphQLResponse;
    try {
      response = await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { id stages { stage } } }`, {
        token: studentToken,
        variables: { id: submitted },
      });
    } finally {
      await db.execute(sql`alter table request_stages_elsewhere rename to request_stages`);
    }

    expect(response.status).toBeLessThan(500);
    const error = onlyError(response);
    expect(error.message).toBe('Unexpected error.');
    expect(error.path).toEqual(['contentRequest', 'stages']);
    expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const requestId = error.extensions?.requestId as string;
    expect(requestId).toMatch(UUID_PATTERN);
    expect(response.headers.get('x-request-id')).toBe(requestId);
    expectNothingInternal(response);

    // Logged exactly once, with that id and the real cause (which the client never saw).
    const logged = app.logs.slice(logsBefore).filter((line) => line.level >= 50);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ requestId, path: 'contentRequest.stages', msg: 'unexpected error while resolving' });
    expect(JSON.stringify(logged[0]!.err)).toMatch(/request_stages/);

    // Restored: the same query works again.
    const again = await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { id stages { stage } } }`, {
      token: studentToken,
      variables: { id: submitted },
    });
    expect(dataOf(again).contentRequest).toEqual({ id: submitted, stages: [] });
  });
});

describe('x-request-id', () => {
  test('a sane id the caller sends is echoed, and used for the request', async () => {
    const response = await app.graphql(`{ viewer { id } }`, { token: studentToken, headers: { 'x-request-id': 'edge-proxy:2026.11.24-abc_123' } });
    dataOf(response);
    expect(response.headers.get('x-request-id')).toBe('edge-proxy:2026.11.24-abc_123');
  });

  test('without one, or with one that does not look like an id, a fresh UUID is generated', async () => {
    const ids = new Set<string>();
    for (const given of [undefined, 'has spaces in it', '<script>alert(1)</script>', 'x'.repeat(101)]) {
      const response = await app.graphql(`{ viewer { id } }`, { token: studentToken, headers: given ? { 'x-request-id': given } : {} });
      dataOf(response);
      const id = response.headers.get('x-request-id')!;
      expect(id, given).toMatch(UUID_PATTERN);
      ids.add(id);
    }
    expect(ids.size).toBe(4);
  });

  test('errors carry it too (HTTP 401 without a token)', async () => {
    const response = await app.graphql(`{ viewer { id } }`, { token: null, headers: { 'x-request-id': 'unauthenticated-1' } });
    expect(response.status).toBe(401);
    expect(response.headers.get('x-request-id')).toBe('unauthenticated-1');
  });
});

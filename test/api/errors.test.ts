/**
 * Authentication, document limits, masking and request ids, through real
 * HTTP; and the configuration that refuses to start with a bad value.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, sql } from 'drizzle-orm';
import { Lexer, Source, TokenKind } from 'graphql';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DOCUMENT_LIMITS } from '../../src/http/graphql-server.js';
import { organizations, users } from '../../src/db/tables.js';
import { signToken } from '../../src/http/auth.js';
import { dataOf, onlyError, startTestApp, TEST_JWT_SECRET, type GraphQLResponse, type TestApp } from '../helpers/app.js';

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

/** No stack trace, source path or SQL in anything a client receives. */
function expectNothingInternal(response: GraphQLResponse) {
  const body = JSON.stringify({ data: response.data, errors: response.errors });
  expect(body).not.toMatch(/stack|node_modules|\.ts:\d+|\bat \w+ \(|relation "|request_stages/i);
}

const errorLogs = () => app.logs.filter((line) => line.level >= 50);

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

describe('tokens that are refused', () => {
  test('each reason is UNAUTHENTICATED (HTTP 401) with its own clear message, and none is logged as an error', async () => {
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    const claims = { sub: 'errors-student', role: 'student' as const, organization_id: 'errors-org' };
    const otherSecret = new TextEncoder().encode('another-secret-that-is-also-32-characters-long');
    const cases: [string, string, RegExp][] = [
      ['garbage', 'not.a.jwt', /not a valid JWT/],
      ['signed with another secret', await signToken(otherSecret, claims), /signature is invalid/],
      ['expired', await app.token(claims, { expiresIn: '-2m' }), /has expired/],
      ['an unknown role', await app.token({ ...claims, role: 'superuser' as never }), /role claim is invalid.*student/],
      [
        'without a subject',
        await new SignJWT({ role: 'student' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(secret),
        /sub claim is invalid/,
      ],
      ['alg none', new UnsecuredJWT({ role: 'admin' }).setSubject('errors-admin').setIssuedAt().setExpirationTime('5m').encode(), /algorithm this server does not accept/],
      [
        'HS512 with the right secret',
        await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS512' }).setSubject('errors-admin').setExpirationTime('5m').sign(secret),
        /algorithm this server does not accept/,
      ],
    ];
    const messages = new Set<string>();
    for (const [name, token, message] of cases) {
      const response = await app.graphql(`{ viewer { id role } }`, { token });
      expect(response.status, name).toBe(401);
      const error = onlyError(response);
      expect(error.extensions?.code, name).toBe('UNAUTHENTICATED');
      expect(error.message, name).toMatch(message);
      expect(response.data ?? null, name).toBeNull();
      expectNothingInternal(response);
      messages.add(error.message);
    }
    // Garbage, signature, expiry, role, subject, algorithm: six distinct explanations.
    expect(messages.size).toBe(6);

    // A header that is not a bearer token at all is refused the same way.
    const basic = await app.graphql(`{ viewer { id } }`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    expect(onlyError(basic).extensions?.code).toBe('UNAUTHENTICATED');

    // A refused token is the client's problem, not the server's: no error-level log lines.
    expect(errorLogs()).toEqual([]);
    // …and nothing was provisioned for the unsigned admin.
    expect(await app.testDatabase.database.db.select().from(users).where(eq(users.userId, 'errors-admin'))).toEqual([]);
  });
});

describe('RS256 tokens from a JWKS', () => {
  let jwks: Server;
  let jwksApp: TestApp;
  let privateKey: CryptoKey;
  let jwksRequests = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
    jwks = createServer((request, response) => {
      jwksRequests++;
      if (request.url !== '/jwks.json') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const { port } = jwks.address() as AddressInfo;
    // An empty JWT_SECRET counts as unset (config.ts), so only the JWKS verifies.
    jwksApp = await startTestApp({ env: { JWT_SECRET: '', JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } });
  });
  afterAll(async () => {
    await jwksApp?.close();
    jwks?.closeAllConnections();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  const rs256 = (key: CryptoKey, kid: string, claims: Record<string, unknown> = { role: 'admin', organization_id: 'jwks-org' }) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).setSubject('jwks-admin').setIssuedAt().setExpirationTime('5m').sign(key);

  test('a token signed with the published key works', async () => {
    const response = await jwksApp.graphql(`{ viewer { id role organizationId } pipelineStages { name } }`, {
      token: await rs256(privateKey, 'test-key-1'),
    });
    const data = dataOf(response);
    expect(data.viewer).toEqual({ id: 'jwks-admin', role: 'ADMIN', organizationId: 'jwks-org' });
    expect(data.pipelineStages).toHaveLength(5);
    expect(jwksRequests).toBeGreaterThanOrEqual(1);
  });

  test('an HS256 token is refused, even one signed with the test secret', async () => {
    const response = await jwksApp.graphql(`{ viewer { id } }`, { token: await jwksApp.token({ sub: 'jwks-admin', role: 'admin' }) });
    expect(response.status).toBe(401);
    const error = onlyError(response);
    expect(error.extensions?.code).toBe('UNAUTHENTICATED');
    expect(error.message).toMatch(/algorithm this server does not accept/);
  });

  test('an RS256 token from a key the JWKS does not publish is refused', async () => {
    const stranger = await generateKeyPair('RS256');
    const sameKid = await jwksApp.graphql(`{ viewer { id } }`, { token: await rs256(stranger.privateKey, 'test-key-1') });
    expect(onlyError(sameKid).extensions?.code).toBe('UNAUTHENTICATED');
    expect(onlyError(sameKid).message).toMatch(/signature is invalid/);

    const otherKid = await jwksApp.graphql(`{ viewer { id } }`, { token: await rs256(stranger.privateKey, 'someone-elses-key') });
    expect(otherKid.status).toBe(401);
    expect(onlyError(otherKid).extensions?.code).toBe('UNAUTHENTICATED');
    expect(onlyError(otherKid).message).toMatch(/no key of the configured JWKS matches/);
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
    const submitted = dataOf(
      await app.graphql(
        `mutation { submitContentRequest(input: { correlationId: "errors-unexpected-1", topic: "Tides", studentQuery: "Why are there two?" }) { request { id } } }`,
        { token: studentToken },
      ),
    ).submitContentRequest.request.id as string;

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

describe('a valid token for a user nobody has seen', () => {
  test('provisions the user and their organization on first use', async () => {
    const db = app.testDatabase.database.db;
    expect(await db.select().from(users).where(eq(users.userId, 'newcomer-1'))).toEqual([]);
    expect(await db.select().from(organizations).where(eq(organizations.organizationId, 'newcomer-org'))).toEqual([]);

    const token = await app.token({ sub: 'newcomer-1', role: 'org_admin', organization_id: 'newcomer-org' });
    const viewer = dataOf(await app.graphql(`{ viewer { id role organizationId organization { id name } } }`, { token })).viewer;
    expect(viewer).toEqual({ id: 'newcomer-1', role: 'ORG_ADMIN', organizationId: 'newcomer-org', organization: { id: 'newcomer-org', name: 'newcomer-org' } });

    expect(await db.select().from(users).where(eq(users.userId, 'newcomer-1'))).toEqual([
      expect.objectContaining({ userId: 'newcomer-1', role: 'org_admin', organizationId: 'newcomer-org' }),
    ]);
    expect(await db.select().from(organizations).where(eq(organizations.organizationId, 'newcomer-org'))).toHaveLength(1);

    // A second call changes nothing; a later token with another role moves the user with it.
    dataOf(await app.graphql(`{ viewer { id } }`, { token }));
    const promoted = await app.token({ sub: 'newcomer-1', role: 'admin', organization_id: 'newcomer-org' });
    expect(dataOf(await app.graphql(`{ viewer { role } }`, { token: promoted })).viewer.role).toBe('ADMIN');
    expect(await db.select({ role: users.role }).from(users).where(eq(users.userId, 'newcomer-1'))).toEqual([{ role: 'admin' }]);
  });
});

describe('configuration', () => {
  const refused = (environment: Record<string, string>) => {
    try {
      loadConfig(environment);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(environment)}`);
  };
  const secret = 'x'.repeat(32);

  test.each([
    [{ PORT: 'abc' }, /PORT: .*expected number/],
    [{ PORT: '70000' }, /PORT: .*65535/],
    [{ PORT: '80.5' }, /PORT: .*int/],
    [{ DATABASE_POOL_SIZE: '0' }, /DATABASE_POOL_SIZE: .*1/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: .*"info"/],
    [{ DATABASE_URL: 'mysql://localhost/tracker', JWT_SECRET: secret }, /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ LISTEN_DATABASE_URL: 'localhost:5432' }, /LISTEN_DATABASE_URL: must be a postgres/],
    [{ JWT_SECRET: 'too-short' }, /JWT_SECRET: must be at least 32 characters/],
    [{ JWKS_URL: 'not a url' }, /JWKS_URL: must be an http\(s\) URL/],
    [{ JWKS_URL: 'file:///etc/passwd' }, /JWKS_URL: must be an http\(s\) URL/],
    [{ DEMO_DATA: 'yes' }, /DEMO_DATA: must be true or false/],
    [{ METRICS_ROLLUP_INTERVAL_SECONDS: '-1' }, /METRICS_ROLLUP_INTERVAL_SECONDS: .*0/],
    [{ JWT_SECRET: secret, JWKS_URL: 'https://auth.example.test/jwks.json' }, /set JWT_SECRET or JWKS_URL, not both/],
  ] as [Record<string, string>, RegExp][])('%j is refused with a message naming it', (environment, message) => {
    expect(refused(environment)).toMatch(message);
  });

  test('every bad variable is named at once', () => {
    const message = refused({ PORT: 'abc', DEMO_DATA: 'maybe' });
    expect(message).toMatch(/PORT: /);
    expect(message).toMatch(/DEMO_DATA: /);
  });

  test('a server database needs JWT_SECRET or JWKS_URL; an empty one counts as unset', () => {
    for (const environment of [
      { DATABASE_URL: 'postgres://db.example.test/tracker' } as Record<string, string>,
      { DATABASE_URL: 'postgres://db.example.test/tracker', JWT_SECRET: '', JWKS_URL: '' },
    ]) {
      const message = refused(environment);
      expect(message).toMatch(/JWT_SECRET or JWKS_URL is required with DATABASE_URL/);
    }
  });

  test('empty variables mean unset: the defaults apply', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: '', METRICS_ROLLUP_INTERVAL_SECONDS: '', DATABASE_URL: '', JWT_SECRET: '', JWKS_URL: '' });
    expect(config).toMatchObject({
      http: { port: 4000 },
      logLevel: 'info',
      metricsRollupIntervalMs: 300_000,
      database: { kind: 'pglite' },
      auth: { verify: { kind: 'development' } },
    });
    expect(loadConfig({ JWT_SECRET: '', JWKS_URL: 'https://auth.example.test/jwks.json' }).auth.verify).toEqual({
      kind: 'jwks',
      url: 'https://auth.example.test/jwks.json',
    });
  });
});

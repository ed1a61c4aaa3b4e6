/**
 * Tokens through real HTTP: each reason a token is refused, RS256 tokens
 * verified against a JWKS, and the user a first valid token provisions.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { organizations, users } from '../../src/db/tables.js';
import { signToken } from '../../src/http/auth.js';
import { dataOf, expectNothingInternal, onlyError, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

const errorLogs = () => app.logs.filter((line) => line.level >= 50);

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

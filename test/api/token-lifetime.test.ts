/**
 * Token lifetime: `exp` is required, a token may live at most
 * TOKEN_MAX_LIFETIME_SECONDS from its `iat`, and an `iat` in the future
 * beyond the clock-skew tolerance is refused. Each refusal is
 * UNAUTHENTICATED (HTTP 401) with a message naming the claim.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataOf, onlyError, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);
const DAY = 86_400;
const sign = (set: (jwt: SignJWT) => SignJWT) =>
  set(new SignJWT({ role: 'student' }).setProtectedHeader({ alg: 'HS256' }).setSubject('lifetime-student')).sign(secret);

test.each([
  ['no exp', () => sign((jwt) => jwt.setIssuedAt()), /exp/],
  ['iat ten years ahead, exp in 9999', () => sign((jwt) => jwt.setIssuedAt(now() + 3650 * DAY).setExpirationTime(253_402_300_799)), /iat/],
  ['exp in 9999, no iat', () => sign((jwt) => jwt.setExpirationTime(253_402_300_799)), /iat/],
  ['a lifetime over the maximum (31 days)', () => sign((jwt) => jwt.setIssuedAt().setExpirationTime(now() + 40 * DAY)), /exp|iat/],
  ['iat five minutes ahead (beyond the 60 s skew)', () => sign((jwt) => jwt.setIssuedAt(now() + 300).setExpirationTime(now() + DAY)), /iat/],
])('%s: UNAUTHENTICATED, HTTP 401', async (_name, make, message) => {
  const response = await app.graphql('{ viewer { id } }', { token: await make() });
  expect(response.status).toBe(401);
  const error = onlyError(response);
  expect(error.extensions?.code).toBe('UNAUTHENTICATED');
  expect(error.message).toMatch(message);
});

test('accepted: the 30-day development lifetime, and an iat a few seconds ahead (within the skew)', async () => {
  const monthly = await sign((jwt) => jwt.setIssuedAt().setExpirationTime('30d'));
  expect(dataOf(await app.graphql('{ viewer { id } }', { token: monthly })).viewer.id).toBe('lifetime-student');
  const skewed = await sign((jwt) => jwt.setIssuedAt(now() + 20).setExpirationTime(now() + 3600));
  expect(dataOf(await app.graphql('{ viewer { id } }', { token: skewed })).viewer.id).toBe('lifetime-student');
});

test('TOKEN_MAX_LIFETIME_SECONDS lowers the maximum', async () => {
  const strict = await startTestApp({ env: { TOKEN_MAX_LIFETIME_SECONDS: '3600' } });
  try {
    const day = await sign((jwt) => jwt.setIssuedAt().setExpirationTime('1d'));
    expect(onlyError(await strict.graphql('{ viewer { id } }', { token: day })).extensions?.code).toBe('UNAUTHENTICATED');
    const hour = await sign((jwt) => jwt.setIssuedAt().setExpirationTime('1h'));
    expect(dataOf(await strict.graphql('{ viewer { id } }', { token: hour })).viewer.id).toBe('lifetime-student');
  } finally {
    await strict.close();
  }
});

test('the development tokens live no longer than TOKEN_MAX_LIFETIME_SECONDS, so they are accepted', async () => {
  const development = await startTestApp({ development: true, env: { DEMO_DATA: 'true', TOKEN_MAX_LIFETIME_SECONDS: '3600' } });
  try {
    expect(development.running.developmentTokens.length).toBeGreaterThan(0);
    for (const { userId, token } of development.running.developmentTokens) {
      expect(dataOf(await development.graphql('{ viewer { id } }', { token })).viewer.id).toBe(userId);
    }
  } finally {
    await development.close();
  }
});

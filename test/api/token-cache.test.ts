/**
 * The verified-token cache (src/http/auth.ts) through real HTTP: a token once
 * accepted does not let a changed or re-signed one through, and is refused
 * once it expires although it was accepted (and remembered) before.
 */
import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  // No clock tolerance: a token is refused as soon as its exp has passed.
  app = await startTestApp({ env: { TOKEN_CLOCK_SKEW_SECONDS: '0' } });
});
afterAll(() => app?.close());

const claims = { sub: 'cache-student', role: 'student' as const, organization_id: 'cache-org' };
const viewerId = async (token: string) => dataOf(await app.graphql('{ viewer { id } }', { token })).viewer.id;
const refusal = async (token: string) => {
  const response = await app.graphql('{ viewer { id } }', { token });
  expect(response.status).toBe(401);
  return onlyError(response);
};

test('after a token is accepted, the same claims with a changed signature or another secret are still refused', async () => {
  const token = await app.token(claims);
  expect(await viewerId(token)).toBe('cache-student');
  expect(await viewerId(token)).toBe('cache-student');

  const [header, payload, signature] = token.split('.') as [string, string, string];
  const flipped = signature[10] === 'A' ? 'B' : 'A';
  const changed = `${header}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`;
  expect((await refusal(changed)).message).toMatch(/signature is invalid/);

  const otherSignature = createHmac('sha256', 'another-secret-that-is-also-32-characters-long').update(`${header}.${payload}`).digest('base64url');
  const forged = `${header}.${payload}.${otherSignature}`;
  expect((await refusal(forged)).message).toMatch(/signature is invalid/);

  expect(await viewerId(token)).toBe('cache-student');
});

test('a token accepted before its exp is refused after it', async () => {
  const token = await app.token(claims, { expiresIn: '2s' });
  expect(await viewerId(token)).toBe('cache-student');
  const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
  await sleep(exp * 1000 - Date.now() + 100);
  expect((await refusal(token)).message).toMatch(/has expired/);
});

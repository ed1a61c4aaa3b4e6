/**
 * Security headers: the GraphiQL page gets a content security policy with no
 * external origin and no framing, nothing is content-sniffed, and nothing
 * token-bearing (the page with its development tokens, any answer to a request
 * with Authorization) is cached. The page still working under the policy is
 * test/browser/graphiql.test.ts.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
let token: string;
beforeAll(async () => {
  app = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
  token = app.running.developmentTokens.find((t) => t.role === 'student')!.token;
});
afterAll(() => app?.close());

const directives = (policy: string | null) =>
  new Map((policy ?? '').split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name!, values]));

test('the GraphiQL page: a CSP with no external origin and no framing, nosniff, no-store', async () => {
  const response = await fetch(`${app.url}/graphql`, { headers: { accept: 'text/html' } });
  await response.text();
  expect(response.headers.get('content-type')).toMatch(/text\/html/);
  const policy = response.headers.get('content-security-policy');
  const csp = directives(policy);
  expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
  expect(csp.get('default-src')).toEqual(["'none'"]);
  expect(csp.get('script-src')?.every((source) => /^'(self|sha256-[\w+/=]+)'$/.test(source))).toBe(true);
  // No origin but its own: no scheme-qualified or wildcard source anywhere.
  expect(policy).not.toMatch(/https?:|\*|wss?:/);
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('cache-control')).toMatch(/no-store/);
});

test('every response is nosniff; one to a request with Authorization is never cached', async () => {
  const withToken = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ viewer { id } }' }),
  });
  await withToken.text();
  expect(withToken.headers.get('x-content-type-options')).toBe('nosniff');
  expect(withToken.headers.get('cache-control')).toMatch(/no-store/);
  expect(directives(withToken.headers.get('content-security-policy')).get('frame-ancestors')).toEqual(["'none'"]);

  for (const path of ['/health', '/ready', '/metrics', '/graphql?query={__typename}', '/nothing-here']) {
    const response = await fetch(`${app.url}${path}`);
    await response.text();
    expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
  }
});

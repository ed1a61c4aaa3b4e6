/**
 * What the service hands out to anyone who asks: development tokens only in
 * the embedded development mode (never signed with a configured secret),
 * loopback by default in that mode, and CORS only for the CORS_ORIGINS
 * allow-list.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

const graphiqlPage = async (url: string) => (await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } })).text();

describe('with a configured JWT_SECRET and DEMO_DATA=true', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { DEMO_DATA: 'true' } });
  });
  afterAll(() => app?.close());

  test('no token is signed with the secret: none kept, none in GraphiQL', async () => {
    expect(app.running.developmentTokens).toEqual([]);
    const html = await graphiqlPage(app.url);
    expect(html).toContain('A student asks for content');
    expect(html).not.toMatch(/Bearer eyJ/);
  });

  test('an unlisted Origin gets no CORS headers', async () => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    const preflight = await fetch(`${app.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS_ORIGINS', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { CORS_ORIGINS: 'https://app.example, https://admin.example' } });
  });
  afterAll(() => app?.close());

  test('a listed origin is allowed (without credentials), another is not', async () => {
    const ask = (origin: string) =>
      fetch(`${app.url}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
    const listed = await ask('https://admin.example');
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://admin.example');
    expect(listed.headers.get('access-control-allow-credentials')).toBeNull();
    expect((await ask('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('the embedded development mode', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
  });
  afterAll(() => app?.close());

  test('has development tokens, in GraphiQL', async () => {
    const student = app.running.developmentTokens.find((t) => t.role === 'student');
    expect(student?.token).toMatch(/^eyJ/);
    expect(await graphiqlPage(app.url)).toContain(`Bearer ${student!.token}`);
  });
});

test('HOST: loopback by default when embedded; the operator decides with DATABASE_URL', () => {
  expect(loadConfig({}).http.host).toBe('127.0.0.1');
  expect(loadConfig({ DATABASE_URL: 'postgres://db/x', JWT_SECRET: 'x'.repeat(32) }).http.host).toBe('0.0.0.0');
  expect(loadConfig({ HOST: '0.0.0.0' }).http.host).toBe('0.0.0.0');
});

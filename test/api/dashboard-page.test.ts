/**
 * The dashboard as the service serves it: the page at `/`, its bundles at
 * `/assets/…`, a strict content security policy, development sign-ins only
 * in the embedded development mode, and a 503 that says how to build when the
 * build is missing. PGlite project only (test/setup/dashboard-build.ts builds it there).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serveDashboard } from '../../src/http/dashboard.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDatabaseKind } from '../helpers/database.js';

const signInsOf = (html: string) => JSON.parse(/<script type="application\/json" id="sign-ins">(.*?)<\/script>/.exec(html)![1]!) as { role: string; token: string }[];

describe.skipIf(testDatabaseKind() !== 'pglite')('the dashboard page', () => {
  let development: TestApp;
  let configured: TestApp;
  beforeAll(async () => {
    development = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
    configured = await startTestApp({ env: { DEMO_DATA: 'true' } });
  });
  afterAll(async () => {
    await development?.close();
    await configured?.close();
  });

  test('`/` is the page, under a policy that allows only its own scripts, styles and origin', async () => {
    const response = await fetch(`${development.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const policy = response.headers.get('content-security-policy')!;
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    const html = await response.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map(([, path]) => path!);
    expect(assets).toHaveLength(2);
    for (const path of assets) {
      const asset = await fetch(`${development.url}${path}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(path.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(asset.headers.get('cache-control')).toContain('immutable');
    }
  });

  test('the embedded development mode offers each demo user a sign-in; a configured secret, none', async () => {
    const offered = signInsOf(await (await fetch(`${development.url}/`)).text());
    expect(offered.map((user) => user.token)).toEqual(development.running.developmentTokens.map((user) => user.token));
    expect(new Set(offered.map((user) => user.role))).toEqual(new Set(['student', 'org_admin', 'admin', 'worker']));
    expect(signInsOf(await (await fetch(`${configured.url}/`)).text())).toEqual([]);
  });

  test('anything else under the page is 404, a write to it 405; the API is untouched', async () => {
    for (const path of ['/assets/missing-0000.js', '/assets/..%2Fpackage.json', '/assets/', '/index.html', '/elsewhere']) {
      expect((await fetch(`${development.url}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${development.url}/`, { method: 'POST', body: '{}' })).status).toBe(405);
    expect((await fetch(`${development.url}/health`)).status).toBe(200);
  });

  test('without a build, `/` answers 503 and says how to build', async () => {
    const server = createServer(serveDashboard((_request, response) => response.writeHead(404).end(), { dir: '/nonexistent/dashboard' }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(response.status).toBe(503);
      expect(await response.text()).toContain('npm run build:dashboard');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

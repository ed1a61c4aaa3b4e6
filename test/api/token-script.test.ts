/**
 * `npm run token` (scripts/token.ts), run as a child process the way a person
 * runs it, and its token used against a real server with the same secret.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { dataOf, onlyError, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.js';
import { testDatabaseKind } from '../helpers/database.js';
import { ROOT, serviceEnvironment } from '../helpers/service-process.js';

const run = promisify(execFile);

async function mintToken(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', ...args], {
      cwd: ROOT,
      env: serviceEnvironment(env),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const VIEWER = 'query { viewer { id role } }';

// The script and the secret are the subject, not the database: PGlite only.
describe.skipIf(testDatabaseKind() !== 'pglite')('npm run token', () => {
  const apps: TestApp[] = [];
  const folders: string[] = [];
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  test('prints only a token that the service configured with the same JWT_SECRET accepts', async () => {
    const minted = await mintToken(['--role', 'org_admin', '--sub', 'alice', '--org', 'o1', '--ttl', '10m'], { JWT_SECRET: TEST_JWT_SECRET });
    expect(minted).toMatchObject({ code: 0, stderr: '' });
    expect(minted.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = minted.stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'alice', role: 'org_admin', organization_id: 'o1' });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);

    const app = await startTestApp();
    apps.push(app);
    expect(dataOf(await app.graphql(VIEWER, { token }))).toEqual({ viewer: { id: 'alice', role: 'ORG_ADMIN' } });
  });

  test('embedded without a secret, signs with the development secret the service keeps in the data folder', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'token-script-'));
    folders.push(dataDir);
    const minted = await mintToken(['--role', 'admin', '--sub', 'root'], { DATA_DIR: dataDir });
    expect(minted.code).toBe(0);

    const app = await startTestApp({ development: true, env: { DATA_DIR: dataDir, DEMO_DATA: 'false' } });
    apps.push(app);
    expect(dataOf(await app.graphql(VIEWER, { token: minted.stdout.trim() }))).toEqual({ viewer: { id: 'root', role: 'ADMIN' } });
    // A secret of its own would not do: a token from another folder is refused.
    const otherDir = await mkdtemp(path.join(tmpdir(), 'token-script-'));
    folders.push(otherDir);
    const other = await mintToken(['--role', 'admin', '--sub', 'root'], { DATA_DIR: otherDir });
    expect(onlyError(await app.graphql(VIEWER, { token: other.stdout.trim() })).extensions?.code).toBe('UNAUTHENTICATED');
  });

  test.each([
    [['--role', 'boss', '--sub', 'a'], /--role must be one of student, org_admin, admin, worker, not "boss"/],
    [['--role', 'admin'], /--sub \(the user id\) is required/],
    [['--role', 'admin', '--sub', 'a', '--ttl', 'soon'], /--ttl must be a whole number/],
    [['--role', 'admin', '--sub', 'a', '--ttl', '32d'], /--ttl is longer than TOKEN_MAX_LIFETIME_SECONDS \(2678400 s\)/],
    [['--role', 'admin', '--sub', 'a', '--colour', 'red'], /Unknown option '--colour'/],
  ])('refuses %j with a message and no token', async (args, message) => {
    const minted = await mintToken(args, { JWT_SECRET: TEST_JWT_SECRET });
    expect(minted.code).toBe(2);
    expect(minted.stdout).toBe('');
    expect(minted.stderr).toMatch(message);
    expect(minted.stderr).toMatch(/^usage: npm run token/m);
  });

  test('mints nothing where the identity provider signs (JWKS_URL) or the secret lives only in memory', async () => {
    const settings: Record<string, string>[] = [{ JWKS_URL: 'https://id.example/jwks.json' }, { DATA_DIR: 'memory://' }];
    for (const env of settings) {
      const minted = await mintToken(['--role', 'admin', '--sub', 'a'], env);
      expect(minted.code).toBe(2);
      expect(minted.stdout).toBe('');
      expect(minted.stderr).toMatch(/JWKS_URL is set|DATA_DIR is memory:\/\//);
    }
  });
});

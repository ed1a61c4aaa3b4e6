/**
 * `npm start` as a newcomer meets it (the README's first command): the entry
 * file as a child process on embedded PGlite in a fresh data folder. It prints
 * a token per role, serves GraphiQL with the example tabs, takes a student's
 * request and a worker's report, stops cleanly on SIGTERM, keeps its data and
 * tokens across a restart, refuses a second process on the same folder, and
 * refuses a bad setting by name.
 *
 * It does not use the test database, so it runs in the pglite project only.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { exitWithin, freePort, graphqlAt as graphql, spawnService, START_TIMEOUT_MS, type ServiceProcess } from '../helpers/service-process.js';
import { reportStage, submitRequest } from '../helpers/requests.js';

const services: ServiceProcess[] = [];

/** `npm start` with these settings; stopped at the end of the file if still running. */
function startService(env: Record<string, string>): ServiceProcess {
  const service = spawnService(env);
  services.push(service);
  return service;
}

const ROLES = ['student', 'org_admin', 'admin', 'worker'] as const;
type Role = (typeof ROLES)[number];

/** The printed block: `  <role> <user id> Authorization: Bearer <token>` per demo user. */
function printedTokens(stdout: string) {
  const block = stdout.slice(stdout.indexOf('Development tokens'));
  return [...block.matchAll(/^ {2}(\w+)\s+(\S+)\s+Authorization: Bearer (\S+)$/gm)].map(([, role, userId, token]) => ({
    role: role as Role,
    userId: userId!,
    token: token!,
  }));
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/** Kills whatever a failed test left running, then removes the data folder and its lock. */
async function cleanUp(dataDir: string | undefined) {
  for (const service of services) {
    if (service.child.exitCode === null && service.child.signalCode === null) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  }
  if (dataDir) {
    await rm(dataDir, { recursive: true, force: true });
    await rm(`${dataDir}.lock`, { recursive: true, force: true });
  }
}

describe.skipIf(inject('testDatabase').kind === 'postgres')('npm start', () => {
  let dataDir: string;
  let port: number;
  let url: string;
  let service: ServiceProcess;
  const tokenOf: Partial<Record<Role, string>> = {};
  let requestId: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'tracker-start-'));
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // A grace period far longer than any test waits: a prompt exit on SIGTERM is the service's doing, not the grace running out.
    service = startService({ DATA_DIR: dataDir, PORT: String(port), SHUTDOWN_GRACE_SECONDS: '600' });
    await service.waitForOutput(/^ {2}worker\s+\S+\s+Authorization: Bearer \S+$/m);
  }, START_TIMEOUT_MS + 10_000);

  afterAll(() => cleanUp(dataDir));

  test('prints where GraphiQL is and a ready-to-paste token for every role', () => {
    const stdout = service.stdout();
    expect(stdout).toContain(`GraphiQL: ${url}/graphql`);
    const tokens = printedTokens(stdout);
    expect(new Set(tokens.map((t) => t.role))).toEqual(new Set(ROLES));
    for (const { role, userId, token } of tokens) {
      expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(claimsOf(token)).toMatchObject({ sub: userId, role });
      tokenOf[role] ??= token;
    }
  });

  test('/health and /ready answer', async () => {
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
  });

  test('GET /graphql in a browser is GraphiQL, with the example tabs and the tokens in them', async () => {
    const response = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    // One tab per kind of user (src/http/graphiql.ts), each naming its role's printed token.
    // (Checked as a list of what is missing: the page bundles GraphiQL, 9 MB a failure would print.)
    const expected = [
      'Content request tracker',
      'A student asks for content',
      'A pipeline worker reports a stage',
      'Live: every request of yours',
      'An org admin: the organization',
      'Platform admins: failures by stage',
      ...ROLES.map((role) => `Bearer ${tokenOf[role]}`),
    ];
    expect(expected.filter((text) => !html.includes(text))).toEqual([]);
  });

  test('a student submits with the printed token, a worker reports a stage, the student reads the change', async () => {
    const viewer = (await graphql(url, tokenOf.student!, '{ viewer { id role organization { id name } } }')).viewer;
    expect(viewer).toEqual({ id: 'demo-student', role: 'STUDENT', organization: { id: 'demo-school', name: 'Demo School' } });

    const submitted = await submitRequest(
      { url, token: tokenOf.student! },
      { correlationId: 'start-test-1', topic: 'Photosynthesis', studentQuery: 'Explain photosynthesis', gradeLevel: '8' },
    );
    expect(submitted).toMatchObject({ created: true, status: 'PENDING' });
    requestId = submitted.id;

    const reported = await reportStage({ url, token: tokenOf.worker! }, requestId, 'validation', 'IN_PROGRESS', 60);
    expect(reported).toMatchObject({ status: 'VALIDATING', currentStage: 'validation', progressPercentage: 3 });

    const read = (
      await graphql(
        url,
        tokenOf.student!,
        `query ($id: ID!) { contentRequest(id: $id) { status currentStage progressPercentage stages { stage status } events(first: 10) { edges { node { eventType newStatus } } } } }`,
        { id: requestId },
      )
    ).contentRequest;
    expect(read).toEqual({
      status: 'VALIDATING',
      currentStage: 'validation',
      progressPercentage: 3,
      stages: [{ stage: 'validation', status: 'IN_PROGRESS' }],
      events: { edges: [{ node: { eventType: 'CREATED', newStatus: 'PENDING' } }, { node: { eventType: 'STAGE_STARTED', newStatus: 'VALIDATING' } }] },
    });
  });

  test('a second process on the same data folder exits non-zero, saying the folder is in use', async () => {
    const second = startService({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    const { code } = await exitWithin(second, START_TIMEOUT_MS);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(second.stderr()).toContain(`the data folder ${dataDir} is in use by another process`);
    expect(second.stdout()).not.toContain('Development tokens');
    // The first one is unharmed.
    expect((await fetch(`${url}/ready`)).status).toBe(200);
  }, START_TIMEOUT_MS + 10_000);

  test('SIGTERM: the request in flight is answered, its keep-alive connection closed, and a clean exit (code 0) without waiting out the grace period', async () => {
    // A client on a keep-alive connection (as every HTTP client pools them): one
    // request answered, the next one in flight (headers sent, body not yet) at SIGTERM.
    const body = JSON.stringify({ query: '{ viewer { id } }' });
    const head = `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${tokenOf.student}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const closedByServer = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const responses = () => received.split(/(?=HTTP\/1\.1 )/).filter(Boolean);
    socket.write(head + body);
    for (let i = 0; i < 100 && !received.includes('demo-student'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(responses()[0]).toMatch(/^HTTP\/1\.1 200[^]*Keep-Alive[^]*"demo-student"/i);
    socket.write(head);
    await new Promise((resolve) => setTimeout(resolve, 100));

    service.child.kill('SIGTERM');
    // The body only once the service is stopping (on a busy machine a fixed pause alone was not always enough).
    await service.waitForOutput(/"msg":"stopping"/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.write(body);

    // Well inside the 600 s grace period: it exits once the request in flight is answered.
    const { code, signal } = await exitWithin(service, 60_000);
    await closedByServer;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const answers = responses();
    expect(answers).toHaveLength(2);
    expect(answers[1]).toMatch(/^HTTP\/1\.1 200/);
    expect(answers[1]).toMatch(/^connection: close\r$/im);
    expect(answers[1]).toContain('{"data":{"viewer":{"id":"demo-student"}}}');
    expect(service.stdout()).toMatch(/"msg":"stopping"[^]*"msg":"stopped"/);
    expect(service.stderr()).toBe('');
  }, 90_000);

  test('started again on the same folder: the request and the printed tokens are still good', async () => {
    const again = startService({ DATA_DIR: dataDir, PORT: String(port) });
    await again.waitForOutput(/^ {2}worker\s+\S+\s+Authorization: Bearer \S+$/m);
    // The tokens printed before the restart still work: the signing secret is kept in the data folder.
    const read = (await graphql(url, tokenOf.student!, `query ($id: ID!) { contentRequest(id: $id) { status progressPercentage } }`, { id: requestId }))
      .contentRequest;
    expect(read).toEqual({ status: 'VALIDATING', progressPercentage: 3 });
    again.child.kill('SIGTERM');
    expect((await exitWithin(again, 30_000)).code).toBe(0);
  }, START_TIMEOUT_MS + 10_000);
});

describe.skipIf(inject('testDatabase').kind === 'postgres')('npm start with a bad setting', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'tracker-start-bad-'));
  });
  afterAll(() => cleanUp(dataDir));

  test.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['JWT_SECRET', 'too-short'],
  ])('%s=%s: exit 78 with a message naming it, before opening anything', async (name, value) => {
    const service = startService({ DATA_DIR: path.join(dataDir, 'data'), PORT: '0', [name]: value });
    const { code } = await exitWithin(service, 30_000);
    expect(code).toBe(78);
    expect(service.stderr()).toContain('invalid configuration');
    expect(service.stderr()).toMatch(new RegExp(`^\\s*${name}: `, 'm'));
    expect(service.stdout()).toBe('');
    await expect(access(path.join(dataDir, 'data'))).rejects.toThrow(/ENOENT/);
  }, 40_000);

  test('a port already taken: exit 1 naming the port, and the data folder is free again for the next start', async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '0.0.0.0', resolve));
    const folder = path.join(dataDir, 'port-taken');
    try {
      const refused = startService({ DATA_DIR: folder, PORT: String(port) });
      const { code } = await exitWithin(refused, START_TIMEOUT_MS);
      expect(code).toBe(1);
      expect(refused.stdout() + refused.stderr()).toMatch(new RegExp(`EADDRINUSE.*${port}`));
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    const next = startService({ DATA_DIR: folder, PORT: String(port) });
    await next.waitForOutput(/Development tokens/);
    next.child.kill('SIGTERM');
    // Once (with every suite running at once) it exited 1: what it printed says why.
    expect((await exitWithin(next, 30_000)).code, next.describe()).toBe(0);
  }, 2 * START_TIMEOUT_MS);
});

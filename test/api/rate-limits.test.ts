/**
 * Per-user budgets on mutations (issue item 16): past RATE_LIMIT_MUTATIONS_PER_MINUTE
 * a student's mutations are refused with RATE_LIMITED and when to retry; the
 * budget is kept in the database, so two server processes on one PostgreSQL
 * database share it (real child processes, as `npm start` runs them).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { dataOf, onlyError, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { freePort, spawnService, waitUntilReady, type ServiceProcess } from '../helpers/service-process.js';

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id } } }`;
const input = (correlationId: string) => ({ correlationId, topic: 'Magnets', studentQuery: 'Why do they attract?' });

describe('one server', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { RATE_LIMIT_MUTATIONS_PER_MINUTE: '3' } });
  });
  afterAll(() => app?.close());

  test('a student past the budget is refused with RATE_LIMITED and retryAfterSeconds; others keep theirs', async () => {
    const student = await app.token({ sub: 'busy-student', role: 'student', organization_id: 'limits-org' });
    for (let i = 0; i < 3; i++) {
      dataOf(await app.graphql(SUBMIT, { token: student, variables: { input: input(`busy-${i}`) } }));
    }
    const refused = await app.graphql(SUBMIT, { token: student, variables: { input: input('busy-3') } });
    const error = onlyError(refused);
    expect(error.extensions?.code).toBe('RATE_LIMITED');
    expect(error.extensions?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(error.extensions?.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(refused.data?.submitContentRequest ?? null).toBeNull();
    expect(JSON.stringify(refused)).not.toContain('busy-3');

    // Aliases do not multiply the budget: each mutation field counts.
    const other = await app.token({ sub: 'alias-student', role: 'student', organization_id: 'limits-org' });
    const many = await app.graphql(
      `mutation { ${[0, 1, 2, 3].map((i) => `m${i}: submitContentRequest(input: { correlationId: "alias-${i}", topic: "t", studentQuery: "q" }) { created }`).join(' ')} }`,
      { token: other },
    );
    expect(onlyError(many).extensions?.code).toBe('RATE_LIMITED');

    // Another student's budget is untouched, and the pipeline's workers are not limited.
    const fresh = await app.token({ sub: 'calm-student', role: 'student', organization_id: 'limits-org' });
    dataOf(await app.graphql(SUBMIT, { token: fresh, variables: { input: input('calm-0') } }));
    const worker = await app.token({ sub: 'limits-worker', role: 'worker' });
    for (let i = 0; i < 5; i++) {
      dataOf(
        await app.graphql(SUBMIT, { token: worker, variables: { input: { ...input(`worker-${i}`), studentId: 'busy-student' } } }),
      );
    }
  });
});

describe.skipIf(testDatabaseKind() !== 'postgres')('two server processes on one database', () => {
  let testDatabase: TestDatabase;
  const services: (ServiceProcess & { url: string })[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const service = spawnService(
        {
          DATABASE_URL: testDatabase.url!,
          JWT_SECRET: TEST_JWT_SECRET,
          DEMO_DATA: 'false',
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          RATE_LIMIT_MUTATIONS_PER_MINUTE: '4',
        },
        name,
      );
      services.push(Object.assign(service, { url: `http://127.0.0.1:${port}` }));
    }
    for (const service of services) await waitUntilReady(service, service.url);
  });
  afterAll(async () => {
    for (const service of services) {
      if (!service.hasExited()) service.child.kill('SIGTERM');
      await service.exited;
    }
    await testDatabase?.close();
  });

  test('both processes draw on one budget', async () => {
    const token = await signToken(new TextEncoder().encode(TEST_JWT_SECRET), {
      sub: 'replica-student',
      role: 'student',
      organization_id: 'replica-org',
    });
    const submitOn = async (service: { url: string }, correlationId: string) => {
      const response = await fetch(`${service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: SUBMIT, variables: { input: input(correlationId) } }),
      });
      return (await response.json()) as { errors?: { extensions?: Record<string, unknown> }[] };
    };
    // Two each: the budget of 4 is spent across both.
    for (let i = 0; i < 4; i++) expect((await submitOn(services[i % 2]!, `replica-${i}`)).errors).toBeUndefined();
    for (const service of services) {
      expect((await submitOn(service, 'replica-over')).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    }
  });
});

/**
 * The demo pipeline against a real service: one batch drives every request
 * to COMPLETED or FAILED through the stages the API lists (one failed and
 * retried on to completion), each request's event log gap-free; a run
 * without `once` stops cleanly when asked; DEMO_PIPELINE=true starts it
 * inside `npm start` in the embedded mode.
 */
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { runDemoPipeline, type DemoOutcome } from '../../src/demo/pipeline.js';
import { DEMO_USERS } from '../../src/services/demo.js';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { exitWithin, freePort, graphqlAt, spawnService, START_TIMEOUT_MS } from '../helpers/service-process.js';

const STUDENTS = DEMO_USERS.filter((user) => user.role === 'student').map((user) => user.userId);

const READ = `query ($id: ID!) {
  contentRequest(id: $id) {
    status studentId retryCount errorStage errorMessage
    stages { stage status }
    events(first: 200) { edges { node { sequence eventType } } }
  }
}`;

type ReadRequest = {
  status: string;
  studentId: string;
  retryCount: number;
  errorStage: string | null;
  errorMessage: string | null;
  stages: { stage: string; status: string }[];
  events: { edges: { node: { sequence: string; eventType: string } }[] };
};

describe('the demo pipeline', () => {
  let app: TestApp;
  let workerToken: string;
  let stages: string[];

  beforeAll(async () => {
    // The demo users, as the embedded mode seeds them; the worker signs in with a token of the configured secret.
    app = await startTestApp({ env: { DEMO_DATA: 'true' } });
    workerToken = await app.token({ sub: 'demo-worker', role: 'worker' });
    const listed = dataOf(await app.graphql('{ pipelineStages { name order } }', { token: workerToken })).pipelineStages;
    stages = (listed as { name: string; order: number }[]).sort((a, b) => a.order - b.order).map((stage) => stage.name);
  });

  afterAll(() => app?.close());

  const read = async (id: string) =>
    dataOf(await app.graphql(READ, { token: workerToken, variables: { id } })).contentRequest as ReadRequest;

  /** 1, 2, 3 … with no gap and no repeat. */
  const expectGapFree = (request: ReadRequest) => {
    const sequences = request.events.edges.map((edge) => Number(edge.node.sequence));
    expect(sequences).toEqual(sequences.map((_, index) => index + 1));
  };

  test('one batch: every request ends COMPLETED or FAILED, one failed and retried on to completion, every log gap-free', async () => {
    const outcomes = await runDemoPipeline({ url: app.url, token: workerToken, studentIds: STUDENTS, concurrency: 4, speed: 1_000, once: true });

    expect(outcomes).toHaveLength(4);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED']);
    const retried = outcomes.filter((outcome) => outcome.retried);
    expect(retried).toHaveLength(1);
    expect(retried[0]!.status).toBe('COMPLETED');

    for (const outcome of outcomes) {
      const request = await read(outcome.id);
      expect(request.status).toBe(outcome.status);
      expect(STUDENTS).toContain(request.studentId);
      expectGapFree(request);
      const types = request.events.edges.map((edge) => edge.node.eventType);
      if (outcome.status === 'COMPLETED') {
        // Progress was reported inside the stages, not only their start and end. (A request that
        // failed may have failed in its first stage before its first progress report.)
        expect(types).toContain('PROGRESS');
        // Every stage the API lists, in its order, completed.
        expect(request.stages).toEqual(stages.map((stage) => ({ stage, status: 'COMPLETED' })));
      } else {
        expect(request.errorStage).toEqual(expect.any(String));
        expect(request.errorMessage).toEqual(expect.any(String));
        expect(request.stages.find((stage) => stage.stage === request.errorStage)?.status).toBe('FAILED');
      }
      if (outcome.retried) {
        expect(request.retryCount).toBe(1);
        expect(types.indexOf('FAILURE')).toBeGreaterThan(0);
        expect(types.indexOf('RETRY')).toBeGreaterThan(types.indexOf('FAILURE'));
      }
    }
  });

  test('stopped mid-run: the run ends without throwing, every request it touched has a gap-free log, and nothing is reported after', async () => {
    const stop = new AbortController();
    const submitted: string[] = [];
    const brokeOff: unknown[] = [];
    const run = runDemoPipeline({
      url: app.url,
      token: workerToken,
      studentIds: STUDENTS,
      concurrency: 3,
      speed: 200,
      signal: stop.signal,
      log: (_level, message, fields) => {
        if (message === 'demo request submitted') submitted.push(fields.requestId as string);
        // Stop as soon as one request has finished: the others are mid-stage.
        if (message === 'demo request completed' || message === 'demo request failed') stop.abort();
        if (message.includes('broke off')) brokeOff.push(fields);
      },
    });
    const outcomes: DemoOutcome[] = await run;

    expect(brokeOff).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(1);
    expect(submitted.length).toBeGreaterThanOrEqual(outcomes.length);
    const logs = new Map<string, number>();
    for (const id of submitted) {
      const request = await read(id);
      expectGapFree(request);
      logs.set(id, request.events.edges.length);
    }
    // The run has returned: one more request to the service sees the same logs.
    for (const id of submitted) expect((await read(id)).events.edges.length).toBe(logs.get(id));
  });
});

describe('DEMO_PIPELINE=true with a configured JWT_SECRET and DEMO_DATA=true', () => {
  test('the service signs its own worker token and drives requests for the demo students; stopping it stops the pipeline without an error', async () => {
    const app = await startTestApp({ env: { DEMO_DATA: 'true', DEMO_PIPELINE: 'true' } });
    try {
      const admin = await app.token({ sub: 'demo-admin', role: 'admin' });
      let requests: { studentId: string }[] = [];
      // Until the pipeline's first request is there (the test's own timeout bounds the wait).
      while (!requests.length) {
        requests = dataOf(await app.graphql('{ contentRequests(first: 5) { edges { node { studentId } } } }', { token: admin }))
          .contentRequests.edges.map((edge: { node: { studentId: string } }) => edge.node);
        if (!requests.length) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const request of requests) expect(STUDENTS).toContain(request.studentId);
    } finally {
      await app.close();
    }
    expect(app.logs.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([]);
    expect(app.logs.map((line) => line.msg)).toContain('demo pipeline running');
  });
});

describe.skipIf(inject('testDatabase').kind === 'postgres')('DEMO_PIPELINE=true with npm start (embedded)', () => {
  test('starts the pipeline: requests for the demo students appear, and SIGTERM still stops the service cleanly', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const service = spawnService({ DATA_DIR: 'memory://', PORT: String(port), DEMO_PIPELINE: 'true', LOG_LEVEL: 'debug' });
    try {
      const [, adminToken] = await service.waitForOutput(/^ {2}admin\s+\S+\s+Authorization: Bearer (\S+)$/m);
      expect(service.stdout()).toContain('demo pipeline running');
      const [, requestId] = await service.waitForOutput(/"requestId":"([\da-f-]{36})"[^\n]*"msg":"demo request submitted"/);
      const read = await graphqlAt(url, adminToken!, 'query ($id: ID!) { contentRequest(id: $id) { studentId student { role } } }', { id: requestId });
      expect(STUDENTS).toContain(read.contentRequest.studentId);
      expect(read.contentRequest.student.role).toBe('STUDENT');

      service.child.kill('SIGTERM');
      const { code } = await exitWithin(service, 15_000);
      expect(code).toBe(0);
      expect(service.stdout()).not.toContain('the demo pipeline stopped');
      expect(service.stderr()).toBe('');
    } finally {
      if (!service.hasExited()) service.child.kill('SIGKILL');
    }
  }, START_TIMEOUT_MS + 20_000);
});

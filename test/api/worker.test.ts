/**
 * The worker protocol through real HTTP: a student submits, a worker drives
 * one request through every stage to completion and another to failure; the
 * request's status, progress and event log follow at each step.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataOf, onlyError, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { submitRequest } from '../helpers/requests.js';

let app: TestApp;
let studentToken: string;
let workerToken: string;
beforeAll(async () => {
  app = await startTestApp();
  studentToken = await app.token({ sub: 'worker-test-student', role: 'student', organization_id: 'worker-test-org' });
  workerToken = await app.token({ sub: 'pipeline-1', role: 'worker' });
});
afterAll(() => app?.close());

const REPORT = `mutation ($input: ReportStageInput!) {
  reportStage(input: $input) { id status currentStage progressPercentage errorStage errorMessage completedAt failedAt }
}`;
const READ = `query ($id: ID!) {
  contentRequest(id: $id) {
    status progressPercentage currentStage retryCount
    stages { stage status progressPercentage retryCount }
    events(first: 100) { edges { cursor node { id sequence eventType oldStatus newStatus stage progressPercentage } } }
  }
}`;

const submit = (correlationId: string) =>
  submitRequest({ url: app.url, token: studentToken }, { correlationId, topic: 'Photosynthesis', studentQuery: 'How do plants eat?', gradeLevel: '8' });

const report = (input: Record<string, unknown>, token = workerToken) =>
  app.graphql(REPORT, { token, variables: { input } });

async function read(id: string) {
  return dataOf(await app.graphql(READ, { token: studentToken, variables: { id } })).contentRequest;
}

// The seeded weights: validation 5, retrieval 15, script 25, video 45, processing 10.
const WEIGHTS = [5, 15, 25, 45, 10];
const STATUS_OF_STAGE = ['VALIDATING', 'RETRIEVING', 'GENERATING_SCRIPT', 'GENERATING_VIDEO', 'PROCESSING_VIDEO'];

describe('a worker drives a request', () => {
  test('through every stage to completion: status, progress and events follow', async () => {
    const { id, status } = await submit('worker-complete-1');
    expect(status).toBe('PENDING');

    let done = 0;
    for (const [index, stage] of STAGES.entries()) {
      const started = dataOf(await report({ requestId: id, stage, status: 'IN_PROGRESS' })).reportStage;
      expect(started).toMatchObject({ status: STATUS_OF_STAGE[index], currentStage: stage, progressPercentage: done });

      const halfway = dataOf(await report({ requestId: id, stage, status: 'IN_PROGRESS', progress: 50 })).reportStage;
      expect(halfway.progressPercentage).toBe(Math.floor(done + WEIGHTS[index]! / 2));

      done += WEIGHTS[index]!;
      const completed = dataOf(await report({ requestId: id, stage, status: 'COMPLETED' })).reportStage;
      const last = index === STAGES.length - 1;
      expect(completed).toMatchObject({
        status: last ? 'COMPLETED' : STATUS_OF_STAGE[index],
        progressPercentage: last ? 100 : done,
      });
      if (last) expect(completed.completedAt).toBeTruthy();
    }

    const request = await read(id);
    expect(request.stages.map((s: { stage: string; status: string }) => [s.stage, s.status])).toEqual(
      STAGES.map((stage) => [stage, 'COMPLETED']),
    );
    const events = request.events.edges.map((edge: { node: Record<string, unknown> }) => edge.node);
    // created, then per stage: started, progress, completed (the last one completes the request).
    expect(events.map((e: { eventType: string }) => e.eventType)).toEqual([
      'CREATED',
      ...STAGES.flatMap((_, i) => ['STAGE_STARTED', 'PROGRESS', i === STAGES.length - 1 ? 'COMPLETED' : 'STAGE_COMPLETED']),
    ]);
    // Sequences and cursors are strings, 1, 2, 3 … with no gap.
    expect(events.map((e: { sequence: string }) => e.sequence)).toEqual(events.map((_: unknown, i: number) => String(i + 1)));
    expect(request.events.edges.map((e: { cursor: string }) => e.cursor)).toEqual(
      events.map((e: { sequence: string }) => e.sequence),
    );
    expect(typeof events[0].id).toBe('string');
    expect(events.at(-1)).toMatchObject({ eventType: 'COMPLETED', oldStatus: 'PROCESSING_VIDEO', newStatus: 'COMPLETED', progressPercentage: 100 });
  });

  test('to failure at a stage, then a retry resumes it', async () => {
    const { id } = await submit('worker-fail-1');
    dataOf(await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS' }));
    dataOf(await report({ requestId: id, stage: 'validation', status: 'COMPLETED' }));
    dataOf(await report({ requestId: id, stage: 'retrieval', status: 'IN_PROGRESS', progress: 40 }));
    const failed = dataOf(
      await report({ requestId: id, stage: 'retrieval', status: 'FAILED', errorMessage: 'vector store timed out' }),
    ).reportStage;
    expect(failed).toMatchObject({
      status: 'FAILED',
      errorStage: 'retrieval',
      errorMessage: 'vector store timed out',
      progressPercentage: 11, // 5 + 15 × 40%
    });
    expect(failed.failedAt).toBeTruthy();

    // Nothing more can be reported on a failed request until it is retried.
    const refused = await report({ requestId: id, stage: 'retrieval', status: 'IN_PROGRESS' });
    expect(onlyError(refused).extensions?.code).toBe('INVALID_TRANSITION');
    expect(onlyError(refused).message).toMatch(/failed.*retried/);

    const retried = dataOf(
      await app.graphql(`mutation ($id: ID!) { retryContentRequest(id: $id) { status retryCount errorStage errorMessage } }`, {
        token: studentToken,
        variables: { id },
      }),
    ).retryContentRequest;
    expect(retried).toEqual({ status: 'PENDING', retryCount: 1, errorStage: null, errorMessage: null });

    const resumed = dataOf(await report({ requestId: id, stage: 'retrieval', status: 'IN_PROGRESS' })).reportStage;
    expect(resumed).toMatchObject({ status: 'RETRIEVING', currentStage: 'retrieval', progressPercentage: 5 });

    const request = await read(id);
    const types = request.events.edges.map((e: { node: { eventType: string } }) => e.node.eventType);
    expect(types.slice(-3)).toEqual(['FAILURE', 'RETRY', 'STAGE_STARTED']);
    expect(request.stages.find((s: { stage: string }) => s.stage === 'retrieval')).toMatchObject({ status: 'IN_PROGRESS', retryCount: 1 });
  });
});

describe('what the worker protocol refuses', () => {
  test('a stage reported on a completed request is an INVALID_TRANSITION and changes nothing', async () => {
    const { id } = await submit('worker-refuse-1');
    for (const stage of STAGES) {
      dataOf(await report({ requestId: id, stage, status: 'IN_PROGRESS' }));
      dataOf(await report({ requestId: id, stage, status: 'COMPLETED' }));
    }
    const before = await read(id);
    const response = await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS' });
    expect(onlyError(response).extensions?.code).toBe('INVALID_TRANSITION');
    expect(response.data?.reportStage).toBeNull();
    expect(await read(id)).toEqual(before);
  });

  test('skipping ahead of the pipeline is an INVALID_TRANSITION that names both statuses', async () => {
    const { id } = await submit('worker-refuse-2');
    const response = await report({ requestId: id, stage: 'video_generation', status: 'IN_PROGRESS' });
    const error = onlyError(response);
    expect(error.extensions?.code).toBe('INVALID_TRANSITION');
    expect(error.message).toMatch(/pending to generating_video/);
    expect((await read(id)).stages).toEqual([]);
  });

  test('only workers and admins report stages', async () => {
    const { id } = await submit('worker-refuse-3');
    const response = await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS' }, studentToken);
    expect(onlyError(response).extensions?.code).toBe('FORBIDDEN');
    const adminToken = await app.token({ sub: 'ops-1', role: 'admin' });
    expect(dataOf(await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS' }, adminToken)).reportStage.status).toBe(
      'VALIDATING',
    );
  });

  test('a report without progress keeps the stage’s and merges its metadata; one on a request that does not exist is NOT_FOUND', async () => {
    const { id } = await submit('worker-keep-1');
    dataOf(await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS', progress: 60, metadata: { worker: 'a' } }));
    const again = dataOf(await report({ requestId: id, stage: 'validation', status: 'IN_PROGRESS', metadata: { attempt: 2 } })).reportStage;
    expect(again.progressPercentage).toBe(3); // 5 × 60%, kept
    const stage = dataOf(
      await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { stages { stage progressPercentage metadata } } }`, {
        token: studentToken,
        variables: { id },
      }),
    ).contentRequest.stages[0];
    expect(stage).toEqual({ stage: 'validation', progressPercentage: 60, metadata: { worker: 'a', attempt: 2 } });

    const missing = await report({ requestId: '00000000-0000-4000-8000-000000000000', stage: 'validation', status: 'IN_PROGRESS' });
    expect(onlyError(missing).extensions?.code).toBe('NOT_FOUND');
  });
});

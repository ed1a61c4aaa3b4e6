/**
 * A pipeline stage is data: one migration (its enum value and its definition
 * row) and nothing else. On a freshly migrated database, one more migration
 * adds a stage between script_generation and video_generation and another
 * after video_processing; the real service, started on it, drives a request
 * through all seven stages over GraphQL.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { inFlightStatuses } from '../../src/services/pipeline.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { PROGRESS, subscribeSse, UPDATES } from '../helpers/live.js';

// As an operator would write it. Drizzle's migrator runs it in one transaction,
// as below: the rows may name the new values (they are text, checked by name).
const ADD_STAGES_MIGRATION = [
  `ALTER TYPE content_request_status ADD VALUE 'reviewing_script' AFTER 'generating_script'`,
  `ALTER TYPE content_request_status ADD VALUE 'publishing' AFTER 'processing_video'`,
  // Room between the seeded orders (1..5 become 10..50).
  `UPDATE pipeline_stage_definitions SET stage_order = stage_order * 10`,
  `INSERT INTO pipeline_stage_definitions
     (stage_name, display_name, stage_order, progress_weight, request_status, expected_duration_seconds, description)
   VALUES
     ('script_review', 'Reviewing the script', 35, 10, 'reviewing_script', 600, 'A teacher reviews the script'),
     ('publishing', 'Publishing', 60, 5, 'publishing', 60, 'Publishes the video to the catalogue')`,
];

const STAGES = [
  ['validation', 'VALIDATING'],
  ['retrieval', 'RETRIEVING'],
  ['script_generation', 'GENERATING_SCRIPT'],
  ['script_review', 'REVIEWING_SCRIPT'],
  ['video_generation', 'GENERATING_VIDEO'],
  ['video_processing', 'PROCESSING_VIDEO'],
  ['publishing', 'PUBLISHING'],
] as const;

let app: TestApp;
const tokens = { student: '', worker: '', admin: '' };

beforeAll(async () => {
  app = await startTestApp({
    // Drizzle's migrator would run it in one transaction too.
    prepare: (testDatabase) =>
      testDatabase.database.db.transaction(async (tx) => {
        for (const statement of ADD_STAGES_MIGRATION) await tx.execute(sql.raw(statement));
      }),
  });
  tokens.student = await app.token({ sub: 'stage-student', role: 'student', organization_id: 'stage-org' });
  tokens.worker = await app.token({ sub: 'stage-worker', role: 'worker' });
  tokens.admin = await app.token({ sub: 'stage-admin', role: 'admin' });
});
afterAll(() => app?.close());

const graphql = (query: string, token: string, variables: Record<string, unknown> = {}) => app.graphql(query, { token, variables });

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { request { id status } } }`;
const REPORT = `mutation ($input: ReportStageInput!) { reportStage(input: $input) { status currentStage progressPercentage } }`;
const DASHBOARD = `{ activeRequests { id status currentStage currentStageDisplayName } }`;

async function submit(correlationId: string): Promise<string> {
  const input = { correlationId, topic: 'Volcanoes', studentQuery: 'Why do volcanoes erupt?', gradeLevel: '6' };
  return dataOf(await graphql(SUBMIT, tokens.student, { input })).submitContentRequest.request.id;
}

const report = (requestId: string, stage: string, status: 'IN_PROGRESS' | 'COMPLETED') =>
  graphql(REPORT, tokens.worker, { input: { requestId, stage, status } });

describe('a stage added by one migration', () => {
  test('is a value of ContentRequestStatus', async () => {
    const type = dataOf(await graphql(`{ __type(name: "ContentRequestStatus") { enumValues { name } } }`, tokens.student)).__type;
    expect(type.enumValues.map((value: { name: string }) => value.name).sort()).toEqual(
      [
        'PENDING', 'VALIDATING', 'RETRIEVING', 'GENERATING_SCRIPT', 'REVIEWING_SCRIPT', 'GENERATING_VIDEO',
        'PROCESSING_VIDEO', 'PUBLISHING', 'COMPLETED', 'FAILED', 'CANCELLED',
      ].sort(),
    );
  });

  test('is in flight, in stage order', async () => {
    expect(await inFlightStatuses(app.testDatabase.database.db)).toEqual([
      'pending', 'validating', 'retrieving', 'generating_script', 'reviewing_script',
      'generating_video', 'processing_video', 'publishing',
    ]);
  });

  test('a request goes through every stage, the new ones included, to COMPLETED at 100%, live', async () => {
    const id = await submit('new-stage-through');
    const live = await subscribeSse(app.url, tokens.student, PROGRESS, { id });
    await live.waitForPayloads(1);
    let lastProgress = 0;
    for (const [stage, status] of STAGES) {
      const started = dataOf(await report(id, stage, 'IN_PROGRESS')).reportStage;
      expect(started).toMatchObject({ status, currentStage: stage });
      const completed = dataOf(await report(id, stage, 'COMPLETED')).reportStage;
      expect(completed.progressPercentage).toBeGreaterThan(lastProgress);
      lastProgress = completed.progressPercentage;
      if (stage !== 'publishing') expect(completed.status).toBe(status);
    }
    // Completing the new last stage, not video_processing, completes the request.
    expect(lastProgress).toBe(100);
    const read = dataOf(await graphql(`query ($id: ID!) { contentRequest(id: $id) { status progressPercentage } }`, tokens.student, { id }));
    expect(read.contentRequest).toEqual({ status: 'COMPLETED', progressPercentage: 100 });

    // The live stream carried the new statuses as they happened (the live-event
    // contract takes any status the database defines), in sequence, then ended.
    await live.ended;
    expect(live.completed()).toBe(true);
    const events = live.payloads().filter((update) => update.kind === 'EVENT');
    expect(events.map((update) => update.sequence)).toEqual(events.map((_, i) => String(i + 2)));
    expect(events.map((update) => update.event.newStatus)).toEqual(
      expect.arrayContaining(['REVIEWING_SCRIPT', 'PUBLISHING', 'COMPLETED']),
    );
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
    expect(app.running.hub.stats.unreadableNotifications).toBe(0);
  });

  test('completing video_processing no longer completes the request', async () => {
    const id = await submit('new-stage-not-last');
    for (const [stage] of STAGES.slice(0, 6)) {
      dataOf(await report(id, stage, 'IN_PROGRESS'));
      dataOf(await report(id, stage, 'COMPLETED'));
    }
    const read = dataOf(await graphql(`query ($id: ID!) { contentRequest(id: $id) { status progressPercentage } }`, tokens.student, { id }));
    expect(read.contentRequest.status).toBe('PROCESSING_VIDEO');
    expect(read.contentRequest.progressPercentage).toBeLessThan(100);
  });

  test('a request in the new stage is on the dashboard and in the default feed snapshot', async () => {
    const id = await submit('new-stage-in-flight');
    for (const [stage] of STAGES.slice(0, 3)) {
      dataOf(await report(id, stage, 'IN_PROGRESS'));
      dataOf(await report(id, stage, 'COMPLETED'));
    }
    dataOf(await report(id, 'script_review', 'IN_PROGRESS'));

    const dashboard = dataOf(await graphql(DASHBOARD, tokens.admin)).activeRequests;
    expect(dashboard).toContainEqual({ id, status: 'REVIEWING_SCRIPT', currentStage: 'script_review', currentStageDisplayName: 'Reviewing the script' });

    const feed = await subscribeSse(app.url, tokens.admin, UPDATES);
    try {
      const snapshots = await feed.waitForPayloads(1);
      expect(snapshots.find((update) => update.requestId === id)).toMatchObject({ kind: 'SNAPSHOT', status: 'REVIEWING_SCRIPT', stage: 'script_review' });
    } finally {
      await feed.close();
    }
  });

  test('skipping the new stage is refused', async () => {
    const id = await submit('new-stage-skip');
    for (const [stage] of STAGES.slice(0, 3)) {
      dataOf(await report(id, stage, 'IN_PROGRESS'));
      dataOf(await report(id, stage, 'COMPLETED'));
    }
    const skipped = onlyError(await report(id, 'video_generation', 'IN_PROGRESS'));
    expect(skipped.extensions?.code).toBe('INVALID_TRANSITION');
    expect(skipped.message).toMatch(/generating_script to generating_video/);
  });
});

test('a stage row must drive a stage status the enum has', async () => {
  const insert = (status: string) =>
    app.testDatabase.database.db.execute(sql`
      insert into pipeline_stage_definitions (stage_name, display_name, stage_order, progress_weight, request_status, expected_duration_seconds)
      values ('bogus', 'Bogus', 99, 0, ${status}, 1)`);
  await expect(insert('translating')).rejects.toMatchObject({ cause: expect.objectContaining({ code: '23514' }) });
  await expect(insert('completed')).rejects.toMatchObject({ cause: expect.objectContaining({ code: '23514' }) });
});

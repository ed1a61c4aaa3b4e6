/**
 * Progress and the status a request's stages drive, computed by the triggers
 * on request_stages from the weights in pipeline_stage_definitions.
 */
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { requestStages } from '../../src/db/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest, readRequest } from '../helpers/factories.js';
import { reportStageIn, type StageStatus } from '../helpers/requests.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const reportStage = (requestId: string, stage: string, status: StageStatus, progress?: number) =>
  reportStageIn(t.database.db, requestId, stage, status, progress);

async function weights(): Promise<Record<string, number>> {
  const result = await t.database.db.execute<{ stage_name: string; progress_weight: number }>(
    sql`select stage_name, progress_weight from pipeline_stage_definitions`,
  );
  const read = Object.fromEntries(result.rows.map((r) => [r.stage_name, r.progress_weight]));
  // Pinned: expectations below are computed from these, so they must be the seeded ones.
  expect(read).toEqual({ validation: 5, retrieval: 15, script_generation: 25, video_generation: 45, video_processing: 10 });
  return read;
}

describe('progress follows the stage weights', () => {
  test('a request driven through every stage', async () => {
    const w = await weights();
    const request = await insertRequest(t.database.db);
    const expectState = async (status: string, stage: string | null, progress: number) => {
      const row = await readRequest(t.database.db, request.id);
      expect({ status: row.status, stage: row.currentStage, progress: row.progressPercentage }).toEqual({
        status,
        stage,
        progress,
      });
    };
    await expectState('pending', null, 0);

    await reportStage(request.id, 'validation', 'in_progress');
    await expectState('validating', 'validation', 0);
    await reportStage(request.id, 'validation', 'in_progress', 60);
    await expectState('validating', 'validation', Math.floor((w.validation! * 60) / 100));
    await reportStage(request.id, 'validation', 'completed');
    await expectState('validating', 'validation', w.validation!);

    await reportStage(request.id, 'retrieval', 'in_progress', 50);
    await expectState('retrieving', 'retrieval', Math.floor(w.validation! + (w.retrieval! * 50) / 100));
    await reportStage(request.id, 'retrieval', 'completed');

    await reportStage(request.id, 'script_generation', 'in_progress');
    await reportStage(request.id, 'script_generation', 'completed');
    const afterScript = w.validation! + w.retrieval! + w.script_generation!;
    await expectState('generating_script', 'script_generation', afterScript);

    await reportStage(request.id, 'video_generation', 'in_progress', 25);
    await expectState(
      'generating_video',
      'video_generation',
      Math.floor(afterScript + (w.video_generation! * 25) / 100),
    );
    await reportStage(request.id, 'video_generation', 'completed');
    await reportStage(request.id, 'video_processing', 'in_progress');
    await expectState('processing_video', 'video_processing', afterScript + w.video_generation!);

    await reportStage(request.id, 'video_processing', 'completed');
    await expectState('completed', 'video_processing', 100);
    const done = await readRequest(t.database.db, request.id);
    expect(done.completedAt).toBeInstanceOf(Date);
    expect(done.startedAt).toBeInstanceOf(Date);
  });

  test('a running stage at 100% still leaves room for its completion', async () => {
    const w = await weights();
    const request = await insertRequest(t.database.db);
    await reportStage(request.id, 'validation', 'in_progress', 100);
    const running = await readRequest(t.database.db, request.id);
    expect(running.progressPercentage).toBeLessThan(w.validation!);
    await reportStage(request.id, 'validation', 'completed');
    expect((await readRequest(t.database.db, request.id)).progressPercentage).toBe(w.validation);
  });

  test('calculate_request_progress agrees with the stored progress, and is 0 without stages', async () => {
    const request = await insertRequest(t.database.db);
    const progressOf = async (id: string) =>
      (await t.database.db.execute<{ p: number }>(sql`select calculate_request_progress(${id}::uuid) as p`)).rows[0]!.p;
    expect(await progressOf(request.id)).toBe(0);
    await reportStage(request.id, 'validation', 'in_progress', 40);
    expect(await progressOf(request.id)).toBe((await readRequest(t.database.db, request.id)).progressPercentage);
  });

  test('a failed stage fails the request with its error stage and message', async () => {
    const request = await insertRequest(t.database.db);
    await reportStage(request.id, 'validation', 'in_progress');
    await reportStage(request.id, 'validation', 'completed');
    await reportStage(request.id, 'retrieval', 'in_progress');
    await t.database.db
      .update(requestStages)
      .set({ status: 'failed', errorMessage: 'vector store unavailable' })
      .where(and(eq(requestStages.requestId, request.id), eq(requestStages.stageName, 'retrieval')));
    const failed = await readRequest(t.database.db, request.id);
    expect(failed).toMatchObject({
      status: 'failed',
      errorStage: 'retrieval',
      errorMessage: 'vector store unavailable',
    });
    expect(failed.failedAt).toBeInstanceOf(Date);
  });

  test('stage rows keep their own times and duration', async () => {
    const request = await insertRequest(t.database.db);
    await reportStage(request.id, 'validation', 'in_progress');
    await reportStage(request.id, 'validation', 'completed');
    const [stage] = await t.database.db
      .select()
      .from(requestStages)
      .where(eq(requestStages.requestId, request.id));
    expect(stage!.startedAt).toBeInstanceOf(Date);
    expect(stage!.completedAt).toBeInstanceOf(Date);
    expect(stage!.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(stage!.progressPercentage).toBe(100);
  });

  test('an unknown stage is refused by its foreign key', async () => {
    const request = await insertRequest(t.database.db);
    // Straight to the table: the service would refuse the stage before the database sees it.
    await expect(
      t.database.db.insert(requestStages).values({ requestId: request.id, stageName: 'teleportation', status: 'in_progress' }),
    ).rejects.toMatchObject({
      cause: expect.objectContaining({ code: '23503' }),
    });
    expect((await readRequest(t.database.db, request.id)).status).toBe('pending');
  });
});

/**
 * Resuming after a failure: a failed stage fails the request, a retry counts
 * on the request, and the stage restarted where it failed counts its own
 * retry, as update_request_progress(), tg_request_stages__track_timing() and
 * the lifecycle trigger define it. Weights come from
 * pipeline_stage_definitions (validation 5, retrieval 15, script_generation
 * 25, video_generation 45, video_processing 10), read at run time.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestStages } from '../../src/db/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest, readRequest } from '../helpers/factories.js';
import { reportStageIn, type StageStatus } from '../helpers/requests.js';
import { calculatedProgress, eventsOf, readStage, stageWeights } from '../helpers/stage-rows.js';

let t: TestDatabase;
let w: Record<string, number>;
beforeAll(async () => {
  t = await createTestDatabase();
  w = await stageWeights(t.database.db);
});
afterAll(() => t.close());

const reportStage = (requestId: string, stage: string, status: StageStatus, progress?: number, errorMessage?: string) =>
  reportStageIn(t.database.db, requestId, stage, status, progress, errorMessage);

describe('retry and resume at the failed stage', () => {
  test('fail at retrieval, retry, restart retrieval, finish: every step as the triggers define it', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);

    await reportStage(request.id, 'validation', 'in_progress');
    await reportStage(request.id, 'validation', 'completed');
    await reportStage(request.id, 'retrieval', 'in_progress', 40);
    const atFailure = Math.floor(w.validation! + (w.retrieval! * 40) / 100);
    expect((await readRequest(db, request.id)).progressPercentage).toBe(atFailure);
    const firstStart = await readStage(t.database.db, request.id, 'retrieval');

    // The stage fails: the request fails with that stage and message.
    await reportStage(request.id, 'retrieval', 'failed', undefined, 'vector store unavailable');
    const failed = await readRequest(db, request.id);
    expect(failed).toMatchObject({
      status: 'failed',
      currentStage: 'retrieval',
      errorStage: 'retrieval',
      errorMessage: 'vector store unavailable',
      retryCount: 0,
      // A failed stage still counts by its own progress.
      progressPercentage: atFailure,
    });
    expect(failed.failedAt).toBeInstanceOf(Date);
    const failedStage = await readStage(t.database.db, request.id, 'retrieval');
    expect(failedStage).toMatchObject({ status: 'failed', retryCount: 0, progressPercentage: 40 });
    expect(failedStage.durationSeconds).toBeGreaterThanOrEqual(0);

    // Restarting the failed stage before the request is retried is refused
    // (failed -> retrieving), and the stage change rolls back with it.
    await expect(
      db
        .update(requestStages)
        .set({ status: 'in_progress' })
        .where(and(eq(requestStages.requestId, request.id), eq(requestStages.stageName, 'retrieval'))),
    ).rejects.toMatchObject({
      cause: expect.objectContaining({ code: 'INVTR', message: expect.stringContaining('from failed to retrieving') }),
    });
    expect(await readStage(t.database.db, request.id, 'retrieval')).toMatchObject({ status: 'failed', retryCount: 0 });
    expect((await readRequest(db, request.id)).status).toBe('failed');

    // Retry: failed -> pending counts the retry and clears the failure.
    await db.update(contentRequests).set({ status: 'pending' }).where(eq(contentRequests.id, request.id));
    const retried = await readRequest(db, request.id);
    expect(retried).toMatchObject({
      status: 'pending',
      retryCount: 1,
      errorMessage: null,
      errorStage: null,
      failedAt: null,
      currentStage: 'retrieval',
      progressPercentage: atFailure,
    });
    const retryEvent = (await eventsOf(t.database.db, request.id)).at(-1)!;
    expect(retryEvent).toMatchObject({
      eventType: 'retry',
      oldStatus: 'failed',
      newStatus: 'pending',
      severity: 'warning',
      message: 'Retry 1',
    });

    // Resume at the failed stage: pending -> retrieving directly (the request
    // is a retry), the stage counts its own retry, and its progress restarts.
    await db
      .update(requestStages)
      .set({ status: 'in_progress' })
      .where(and(eq(requestStages.requestId, request.id), eq(requestStages.stageName, 'retrieval')));
    const resumedStage = await readStage(t.database.db, request.id, 'retrieval');
    expect(resumedStage).toMatchObject({
      status: 'in_progress',
      retryCount: 1,
      errorMessage: null,
      progressPercentage: 0,
      completedAt: null,
      durationSeconds: null,
    });
    expect(resumedStage.startedAt!.getTime()).toBeGreaterThanOrEqual(firstStart.startedAt!.getTime());
    // Other stages keep their own count.
    expect((await readStage(t.database.db, request.id, 'validation')).retryCount).toBe(0);
    const resumed = await readRequest(db, request.id);
    expect(resumed).toMatchObject({
      status: 'retrieving',
      currentStage: 'retrieval',
      retryCount: 1,
      progressPercentage: w.validation,
    });
    // Started once, on the first attempt.
    expect(resumed.startedAt).toEqual(failed.startedAt);

    // Progress resumes.
    await reportStage(request.id, 'retrieval', 'in_progress', 60);
    const midway = Math.floor(w.validation! + (w.retrieval! * 60) / 100);
    expect((await readRequest(db, request.id)).progressPercentage).toBe(midway);
    expect(await calculatedProgress(t.database.db, request.id)).toBe(midway);

    // The rest of the pipeline completes the request.
    await reportStage(request.id, 'retrieval', 'completed');
    await reportStage(request.id, 'script_generation', 'in_progress');
    await reportStage(request.id, 'script_generation', 'completed');
    await reportStage(request.id, 'video_generation', 'in_progress');
    await reportStage(request.id, 'video_generation', 'completed');
    await reportStage(request.id, 'video_processing', 'in_progress');
    await reportStage(request.id, 'video_processing', 'completed');
    const done = await readRequest(db, request.id);
    expect(done).toMatchObject({
      status: 'completed',
      progressPercentage: 100,
      retryCount: 1,
      errorMessage: null,
      errorStage: null,
      failedAt: null,
    });
    expect(done.completedAt).toBeInstanceOf(Date);

    const v = w.validation!;
    const vr = v + w.retrieval!;
    const vrs = vr + w.script_generation!;
    const vrsg = vrs + w.video_generation!;
    const events = await eventsOf(t.database.db, request.id);
    expect(events.map((e) => [e.eventType, e.oldStatus, e.newStatus, e.stage, e.progressPercentage])).toEqual([
      ['created', null, 'pending', null, 0],
      ['stage_started', 'pending', 'validating', 'validation', 0],
      ['stage_completed', 'validating', 'validating', 'validation', v],
      ['stage_started', 'validating', 'retrieving', 'retrieval', atFailure],
      ['failure', 'retrieving', 'failed', 'retrieval', atFailure],
      ['retry', 'failed', 'pending', 'retrieval', atFailure],
      ['stage_started', 'pending', 'retrieving', 'retrieval', v],
      ['progress', 'retrieving', 'retrieving', 'retrieval', midway],
      ['stage_completed', 'retrieving', 'retrieving', 'retrieval', vr],
      ['stage_started', 'retrieving', 'generating_script', 'script_generation', vr],
      ['stage_completed', 'generating_script', 'generating_script', 'script_generation', vrs],
      ['stage_started', 'generating_script', 'generating_video', 'video_generation', vrs],
      ['stage_completed', 'generating_video', 'generating_video', 'video_generation', vrsg],
      ['stage_started', 'generating_video', 'processing_video', 'video_processing', vrsg],
      ['completed', 'processing_video', 'completed', 'video_processing', 100],
    ]);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
  });

  test('a second failure of the same stage counts a second retry on both the request and the stage', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    await reportStage(request.id, 'validation', 'in_progress');
    for (let attempt = 1; attempt <= 2; attempt++) {
      await reportStage(request.id, 'validation', 'failed', undefined, `attempt ${attempt} failed`);
      expect(await readRequest(db, request.id)).toMatchObject({
        status: 'failed',
        errorStage: 'validation',
        errorMessage: `attempt ${attempt} failed`,
        retryCount: attempt - 1,
      });
      await db.update(contentRequests).set({ status: 'pending' }).where(eq(contentRequests.id, request.id));
      await reportStage(request.id, 'validation', 'in_progress');
      expect((await readStage(t.database.db, request.id, 'validation')).retryCount).toBe(attempt);
      expect(await readRequest(db, request.id)).toMatchObject({
        status: 'validating',
        retryCount: attempt,
        errorStage: null,
      });
    }
    const retryMessages = (await eventsOf(t.database.db, request.id)).filter((e) => e.eventType === 'retry').map((e) => e.message);
    expect(retryMessages).toEqual(['Retry 1', 'Retry 2']);
  });
});

/**
 * Resuming after a failure, stage events that do not move the bar, skipped
 * stages, and concurrent stage changes: what update_request_progress(),
 * tg_request_stages__track_timing() and the lifecycle trigger do together.
 * Weights come from pipeline_stage_definitions (validation 5, retrieval 15,
 * script_generation 25, video_generation 45, video_processing 10), read at run
 * time so a retune shows up as a clear failure, not a silent pass.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests, requestEvents, requestStages } from '../../src/db/tables.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { insertRequest, readRequest } from '../helpers/factories.js';
import { recordRequestEvents, type RequestEventRecorder } from '../helpers/notifications.js';
import { reportStageIn } from '../helpers/requests.js';
import type { StageStatus } from '../../src/services/stages.js';

let t: TestDatabase;
let recorder: RequestEventRecorder;
beforeAll(async () => {
  t = await createTestDatabase();
  recorder = await recordRequestEvents(t.database);
});
afterAll(async () => {
  await recorder.close();
  await t.close();
});

const reportStage = (requestId: string, stage: string, status: StageStatus, progress?: number, errorMessage?: string) =>
  reportStageIn(t.database.db, requestId, stage, status, progress, errorMessage);

async function readStage(requestId: string, stageName: string) {
  const [row] = await t.database.db
    .select()
    .from(requestStages)
    .where(and(eq(requestStages.requestId, requestId), eq(requestStages.stageName, stageName)));
  return row!;
}

const eventsOf = (requestId: string) =>
  t.database.db
    .select()
    .from(requestEvents)
    .where(eq(requestEvents.requestId, requestId))
    .orderBy(asc(requestEvents.sequence));

async function calculatedProgress(requestId: string): Promise<number> {
  const result = await t.database.db.execute<{ p: number }>(
    sql`select calculate_request_progress(${requestId}::uuid) as p`,
  );
  return result.rows[0]!.p;
}

let w: Record<string, number>;
beforeAll(async () => {
  const result = await t.database.db.execute<{ stage_name: string; progress_weight: number }>(
    sql`select stage_name, progress_weight from pipeline_stage_definitions`,
  );
  w = Object.fromEntries(result.rows.map((r) => [r.stage_name, r.progress_weight]));
  // The arithmetic below assumes weights summing to 100 (no normalisation).
  expect(Object.values(w).reduce((a, b) => a + b, 0)).toBe(100);
});

describe('retry and resume at the failed stage', () => {
  test('fail at retrieval, retry, restart retrieval, finish: every step as the triggers define it', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);

    await reportStage(request.id, 'validation', 'in_progress');
    await reportStage(request.id, 'validation', 'completed');
    await reportStage(request.id, 'retrieval', 'in_progress', 40);
    const atFailure = Math.floor(w.validation! + (w.retrieval! * 40) / 100);
    expect((await readRequest(db, request.id)).progressPercentage).toBe(atFailure);
    const firstStart = await readStage(request.id, 'retrieval');

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
    const failedStage = await readStage(request.id, 'retrieval');
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
    expect(await readStage(request.id, 'retrieval')).toMatchObject({ status: 'failed', retryCount: 0 });
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
    const retryEvent = (await eventsOf(request.id)).at(-1)!;
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
    const resumedStage = await readStage(request.id, 'retrieval');
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
    expect((await readStage(request.id, 'validation')).retryCount).toBe(0);
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
    expect(await calculatedProgress(request.id)).toBe(midway);

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
    const events = await eventsOf(request.id);
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
      expect((await readStage(request.id, 'validation')).retryCount).toBe(attempt);
      expect(await readRequest(db, request.id)).toMatchObject({
        status: 'validating',
        retryCount: attempt,
        errorStage: null,
      });
    }
    const retryMessages = (await eventsOf(request.id)).filter((e) => e.eventType === 'retry').map((e) => e.message);
    expect(retryMessages).toEqual(['Retry 1', 'Retry 2']);
  });
});

describe('stage events', () => {
  test('a stage_completed event is written and notified even when the integer progress does not move', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    // validation at 99% counts w*0.99; retrieval at 4% adds a fraction, so
    // completing validation (+ w*0.01) stays within the same integer.
    await reportStage(request.id, 'validation', 'in_progress', 99);
    await reportStage(request.id, 'retrieval', 'in_progress', 4);
    const before = await readRequest(db, request.id);
    const expected = Math.floor((w.validation! * 99) / 100 + (w.retrieval! * 4) / 100);
    expect(before).toMatchObject({ status: 'retrieving', currentStage: 'retrieval', progressPercentage: expected });
    const eventsBefore = (await eventsOf(request.id)).length;

    await reportStage(request.id, 'validation', 'completed');
    const after = await readRequest(db, request.id);
    expect(Math.floor(w.validation! + (w.retrieval! * 4) / 100)).toBe(expected); // the premise
    // Nothing the request's columns show has changed ...
    expect(after).toMatchObject({ status: 'retrieving', currentStage: 'retrieval', progressPercentage: expected });
    // ... yet the stage's completion is an event, about the stage that completed.
    const events = await eventsOf(request.id);
    expect(events).toHaveLength(eventsBefore + 1);
    const event = events.at(-1)!;
    expect(event).toMatchObject({
      eventType: 'stage_completed',
      oldStatus: 'retrieving',
      newStatus: 'retrieving',
      stage: 'validation',
      progressPercentage: expected,
      message: 'Stage validation completed',
      severity: 'info',
    });
    await expect
      .poll(() => recorder.received.find((n) => n.eventId === String(event.id)))
      .toMatchObject({ eventType: 'stage_completed', stage: 'validation', progress: expected, sequence: event.sequence });

    // Reporting the same completion again is no change at all: no event.
    await reportStage(request.id, 'validation', 'completed');
    expect(await eventsOf(request.id)).toHaveLength(eventsBefore + 1);
  });

  test('a late progress report on a stage still running after the next one started only moves the bar', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    await reportStage(request.id, 'validation', 'in_progress', 50);
    await reportStage(request.id, 'retrieval', 'in_progress');
    const eventsBefore = (await eventsOf(request.id)).length;

    await reportStage(request.id, 'validation', 'in_progress', 90);
    const after = await readRequest(db, request.id);
    const expected = Math.floor((w.validation! * 90) / 100);
    expect(after).toMatchObject({ status: 'retrieving', currentStage: 'retrieval', progressPercentage: expected });
    expect(await calculatedProgress(request.id)).toBe(expected);
    const events = await eventsOf(request.id);
    expect(events).toHaveLength(eventsBefore + 1);
    expect(events.at(-1)).toMatchObject({ eventType: 'progress', newStatus: 'retrieving', stage: 'retrieval' });
  });
});

describe('skipped stages', () => {
  test('a skipped stage counts its full weight, moves the request to its status and is a stage_completed event', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    await reportStage(request.id, 'validation', 'in_progress');
    await reportStage(request.id, 'validation', 'completed');
    await reportStage(request.id, 'retrieval', 'skipped');

    const afterSkip = w.validation! + w.retrieval!;
    expect(await readRequest(db, request.id)).toMatchObject({
      status: 'retrieving',
      currentStage: 'retrieval',
      progressPercentage: afterSkip,
    });
    expect(await calculatedProgress(request.id)).toBe(afterSkip);
    const skipped = await readStage(request.id, 'retrieval');
    expect(skipped).toMatchObject({ status: 'skipped', progressPercentage: 100 });
    expect(skipped.completedAt).toBeInstanceOf(Date);
    expect((await eventsOf(request.id)).at(-1)).toMatchObject({
      eventType: 'stage_completed',
      oldStatus: 'validating',
      newStatus: 'retrieving',
      stage: 'retrieval',
      progressPercentage: afterSkip,
    });

    // A skipped stage counts in full whatever progress it reported: compare a
    // running script stage at 30% with the same request once it is skipped.
    await reportStage(request.id, 'script_generation', 'in_progress', 30);
    expect((await readRequest(db, request.id)).progressPercentage).toBe(
      Math.floor(afterSkip + (w.script_generation! * 30) / 100),
    );
    await reportStage(request.id, 'script_generation', 'skipped');
    expect((await readRequest(db, request.id)).progressPercentage).toBe(afterSkip + w.script_generation!);
    expect(await calculatedProgress(request.id)).toBe(afterSkip + w.script_generation!);
  });

  test('skipping the last stage while processing the video completes the request', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    for (const stage of ['validation', 'retrieval', 'script_generation', 'video_generation']) {
      await reportStage(request.id, stage, 'in_progress');
      await reportStage(request.id, stage, 'completed');
    }
    await reportStage(request.id, 'video_processing', 'in_progress');
    await reportStage(request.id, 'video_processing', 'skipped');
    const done = await readRequest(db, request.id);
    expect(done).toMatchObject({ status: 'completed', progressPercentage: 100 });
    expect((await eventsOf(request.id)).at(-1)).toMatchObject({ eventType: 'completed', newStatus: 'completed' });
  });
});

describe.skipIf(testDatabaseKind() !== 'postgres')('two connections changing stages of one request', () => {
  let a: pg.Client;
  let b: pg.Client;
  beforeAll(async () => {
    a = new pg.Client({ connectionString: t.url });
    b = new pg.Client({ connectionString: t.url });
    await Promise.all([a.connect(), b.connect()]);
  });
  afterAll(async () => {
    await Promise.all([a?.end(), b?.end()]);
  });

  const setStageStatus =
    'update request_stages set status = $1::content_stage_status where request_id = $2 and stage_name = $3';
  const setStageProgress =
    'update request_stages set progress_percentage = $1 where request_id = $2 and stage_name = $3';

  const RUNNING = ['validation', 'retrieval', 'script_generation', 'video_generation'] as const;

  /**
   * A request whose first four stages were started in order and are all still
   * running at 10% (status generating_video, current stage video_generation).
   * Completing an earlier stage and reporting progress on the current one are
   * both legal at any moment, in either order.
   */
  async function requestWithOverlappingStages() {
    const request = await insertRequest(t.database.db);
    for (const stage of RUNNING) await reportStage(request.id, stage, 'in_progress', 10);
    expect(await readRequest(t.database.db, request.id)).toMatchObject({
      status: 'generating_video',
      currentStage: 'video_generation',
      progressPercentage: Math.floor(RUNNING.reduce((sum, s) => sum + (w[s]! * 10) / 100, 0)),
    });
    return request.id;
  }

  /** Progress from the rows as they are, computed here independently of the SQL function. */
  async function progressFromRows(requestId: string): Promise<number> {
    const stages = await t.database.db.select().from(requestStages).where(eq(requestStages.requestId, requestId));
    const total = stages.reduce((sum, s) => {
      const weight = w[s.stageName]!;
      if (s.status === 'completed' || s.status === 'skipped') return sum + weight;
      if (s.status === 'pending') return sum;
      return sum + (weight * Math.min(s.progressPercentage, 99)) / 100;
    }, 0);
    return Math.min(Math.floor(total), 99);
  }

  async function expectStoredMatchesCalculated(requestId: string, label = ''): Promise<number> {
    const stored = (await readRequest(t.database.db, requestId)).progressPercentage;
    expect(stored, `stored vs calculate_request_progress() ${label}`).toBe(await calculatedProgress(requestId));
    expect(stored, `stored vs the stage rows ${label}`).toBe(await progressFromRows(requestId));
    return stored;
  }

  test('a change that had to wait for the other one still counts it (deterministic interleaving)', async () => {
    const requestId = await requestWithOverlappingStages();
    const bPid = (await b.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;

    await a.query('begin');
    await a.query(setStageStatus, ['completed', requestId, 'validation']);
    // B's statement starts (and takes its snapshot) while A is uncommitted ...
    const bDone = b.query(setStageProgress, [50, requestId, 'video_generation']);
    await expect
      .poll(
        async () =>
          (
            await t.database.db.execute<{ wait_event_type: string | null }>(
              sql`select wait_event_type from pg_stat_activity where pid = ${bPid}`,
            )
          ).rows[0]?.wait_event_type,
        { timeout: 5_000, interval: 10 },
      )
      .toBe('Lock');
    await a.query('commit');
    await bDone;

    // ... yet it counts A's completed validation, not the 10% its snapshot saw.
    const expected = Math.floor(
      w.validation! + (w.retrieval! * 10) / 100 + (w.script_generation! * 10) / 100 + (w.video_generation! * 50) / 100,
    );
    expect(await expectStoredMatchesCalculated(requestId)).toBe(expected);
    expect((await eventsOf(requestId)).at(-1)).toMatchObject({ eventType: 'progress', progressPercentage: expected });
  });

  test('concurrent rounds never leave stored progress disagreeing with calculate_request_progress()', async () => {
    for (let round = 0; round < 15; round++) {
      const requestId = await requestWithOverlappingStages();
      const p = 11 + ((round * 37) % 89);
      // Two completions of different earlier stages at once ...
      await Promise.all([
        a.query(setStageStatus, ['completed', requestId, 'validation']),
        b.query(setStageStatus, ['completed', requestId, 'retrieval']),
      ]);
      await expectStoredMatchesCalculated(requestId, `round ${round}, two completions`);
      // ... then a completion and a progress report on the current stage at once.
      await Promise.all([
        a.query(setStageStatus, ['completed', requestId, 'script_generation']),
        b.query(setStageProgress, [p, requestId, 'video_generation']),
      ]);
      const stored = await expectStoredMatchesCalculated(requestId, `round ${round}, completion + progress`);
      expect(stored).toBe(
        Math.floor(w.validation! + w.retrieval! + w.script_generation! + (w.video_generation! * Math.min(p, 99)) / 100),
      );
      const events = await eventsOf(requestId);
      expect(events.at(-1)!.progressPercentage).toBe(stored);
      expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
    }
  });

  test('a repeatable-read writer whose snapshot predates the other commit is refused, not stored stale', async () => {
    const requestId = await requestWithOverlappingStages();
    await b.query('begin isolation level repeatable read');
    try {
      await b.query('select 1'); // B's snapshot is taken here
      await a.query(setStageStatus, ['completed', requestId, 'validation']); // autocommit
      await expect(b.query(setStageProgress, [50, requestId, 'video_generation'])).rejects.toMatchObject({
        code: '40001',
      });
    } finally {
      await b.query('rollback');
    }
    expect(await expectStoredMatchesCalculated(requestId)).toBe(
      Math.floor(w.validation! + (w.retrieval! * 10) / 100 + (w.script_generation! * 10) / 100 + (w.video_generation! * 10) / 100),
    );
    expect((await readStage(requestId, 'video_generation')).progressPercentage).toBe(10);
  });
});

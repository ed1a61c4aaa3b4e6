/**
 * Stage events that do not move the bar, late progress reports, and skipped
 * stages: what the triggers on request_stages write to the request and its
 * event log. Weights are read from pipeline_stage_definitions at run time.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertRequest, readRequest } from '../helpers/factories.js';
import { recordRequestEvents, type RequestEventRecorder } from '../helpers/notifications.js';
import { reportStageIn, type StageStatus } from '../helpers/requests.js';
import { calculatedProgress, eventsOf, readStage, stageWeights } from '../helpers/stage-rows.js';

let t: TestDatabase;
let w: Record<string, number>;
let recorder: RequestEventRecorder;
beforeAll(async () => {
  t = await createTestDatabase();
  recorder = await recordRequestEvents(t.database);
  w = await stageWeights(t.database.db);
});
afterAll(async () => {
  await recorder.close();
  await t.close();
});

const reportStage = (requestId: string, stage: string, status: StageStatus, progress?: number, errorMessage?: string) =>
  reportStageIn(t.database.db, requestId, stage, status, progress, errorMessage);

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
    const eventsBefore = (await eventsOf(t.database.db, request.id)).length;

    await reportStage(request.id, 'validation', 'completed');
    const after = await readRequest(db, request.id);
    expect(Math.floor(w.validation! + (w.retrieval! * 4) / 100)).toBe(expected); // the premise
    // Nothing the request's columns show has changed ...
    expect(after).toMatchObject({ status: 'retrieving', currentStage: 'retrieval', progressPercentage: expected });
    // ... yet the stage's completion is an event, about the stage that completed.
    const events = await eventsOf(t.database.db, request.id);
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
    expect(await eventsOf(t.database.db, request.id)).toHaveLength(eventsBefore + 1);
  });

  test('a late progress report on a stage still running after the next one started only moves the bar', async () => {
    const db = t.database.db;
    const request = await insertRequest(db);
    await reportStage(request.id, 'validation', 'in_progress', 50);
    await reportStage(request.id, 'retrieval', 'in_progress');
    const eventsBefore = (await eventsOf(t.database.db, request.id)).length;

    await reportStage(request.id, 'validation', 'in_progress', 90);
    const after = await readRequest(db, request.id);
    const expected = Math.floor((w.validation! * 90) / 100);
    expect(after).toMatchObject({ status: 'retrieving', currentStage: 'retrieval', progressPercentage: expected });
    expect(await calculatedProgress(t.database.db, request.id)).toBe(expected);
    const events = await eventsOf(t.database.db, request.id);
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
    expect(await calculatedProgress(t.database.db, request.id)).toBe(afterSkip);
    const skipped = await readStage(t.database.db, request.id, 'retrieval');
    expect(skipped).toMatchObject({ status: 'skipped', progressPercentage: 100 });
    expect(skipped.completedAt).toBeInstanceOf(Date);
    expect((await eventsOf(t.database.db, request.id)).at(-1)).toMatchObject({
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
    expect(await calculatedProgress(t.database.db, request.id)).toBe(afterSkip + w.script_generation!);
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
    expect((await eventsOf(t.database.db, request.id)).at(-1)).toMatchObject({ eventType: 'completed', newStatus: 'completed' });
  });
});

/**
 * Two connections changing stages of one request at once (PostgreSQL only:
 * PGlite has one connection): stored progress always agrees with
 * calculate_request_progress() and with the stage rows.
 */
import { eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { requestStages } from '../../src/db/tables.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
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
    expect(stored, `stored vs calculate_request_progress() ${label}`).toBe(await calculatedProgress(t.database.db, requestId));
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
    expect((await eventsOf(t.database.db, requestId)).at(-1)).toMatchObject({ eventType: 'progress', progressPercentage: expected });
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
      const events = await eventsOf(t.database.db, requestId);
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
    expect((await readStage(t.database.db, requestId, 'video_generation')).progressPercentage).toBe(10);
  });
});
